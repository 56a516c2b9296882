//! The admin REST API (`/api/v1/...`) on the admin listener: what an operator needs during an
//! incident. Which clients and sessions there are and what each holds, disconnecting a
//! client, deleting a retained message.
//!
//! Served only when `admin.apiTokenFile` names a token, and every request must carry it
//! (`Authorization: Bearer TOKEN`): the admin listener also serves Prometheus, so it is often
//! reachable from across the cluster, and these requests read client identities and can
//! disconnect clients.
//!
//! | Request | Answer |
//! | --- | --- |
//! | `GET /api/v1/clients?limit=N&after=ID` | sessions by client identifier, `next` cursor |
//! | `GET /api/v1/clients/ID` | one session with its subscriptions |
//! | `DELETE /api/v1/clients/ID` | disconnects the client (5.0: DISCONNECT 0x98) |
//! | `DELETE /api/v1/retained/TOPIC` | deletes the retained message of TOPIC |
//!
//! Identifiers and topics in paths are percent-encoded where needed (`/` in a topic need not).

use std::path::{Path, PathBuf};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{HeaderMap, Method, Response, StatusCode};
use serde_json::{json, Value};
use subtle::ConstantTimeEq;

use crate::codec::ReasonCode;
use crate::server::Broker;
use crate::session::{Events, Session};

/// Most sessions one list request returns.
const MAX_LIMIT: usize = 1000;
const DEFAULT_LIMIT: usize = 100;

/// Why the API token could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ApiTokenError {
    #[error("admin.apiTokenFile {path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("admin.apiTokenFile {path}: the file holds no token")]
    Empty { path: PathBuf },
}

/// The bearer token the API requires: the content of `admin.apiTokenFile`, read again for
/// every request, so a rotated token (a Secret updated in place) takes effect without a
/// restart. API requests are rare; reading a small file for each costs nothing that matters.
pub struct ApiToken {
    path: PathBuf,
}

impl ApiToken {
    /// The token file at `path`, checked now: start-up fails on a file that cannot be read
    /// or holds no token.
    pub fn from_file(path: &Path) -> Result<ApiToken, ApiTokenError> {
        let token = ApiToken {
            path: path.to_owned(),
        };
        token.current()?;
        Ok(token)
    }

    /// The token as the file holds it now (surrounding whitespace, such as a final newline,
    /// ignored).
    fn current(&self) -> Result<Vec<u8>, ApiTokenError> {
        let text = std::fs::read_to_string(&self.path).map_err(|source| ApiTokenError::Read {
            path: self.path.clone(),
            source,
        })?;
        let token = text.trim();
        if token.is_empty() {
            return Err(ApiTokenError::Empty {
                path: self.path.clone(),
            });
        }
        Ok(token.as_bytes().to_vec())
    }

    /// Whether `headers` carry the current token, compared in constant time. A token file
    /// that has become unreadable or empty admits nobody.
    fn admits(&self, headers: &HeaderMap) -> bool {
        let token = match self.current() {
            Ok(token) => token,
            Err(error) => {
                tracing::error!(%error, "admin API request refused: no usable token");
                return false;
            }
        };
        headers
            .get(hyper::header::AUTHORIZATION)
            .and_then(|value| value.as_bytes().strip_prefix(b"Bearer "))
            .is_some_and(|given| bool::from(given.ct_eq(&token)))
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

fn error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    json_response(status, &json!({ "error": message }))
}

/// Answers one `/api/v1/...` request.
pub(super) fn handle(
    broker: &Broker,
    token: Option<&ApiToken>,
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Response<Full<Bytes>> {
    let Some(token) = token else {
        return error(
            StatusCode::NOT_FOUND,
            "the admin API is off: set admin.apiTokenFile to serve it",
        );
    };
    if !token.admits(headers) {
        let mut response = error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
        response.headers_mut().insert(
            hyper::header::WWW_AUTHENTICATE,
            hyper::header::HeaderValue::from_static("Bearer"),
        );
        return response;
    }
    let rest = path.strip_prefix("/api/v1/").unwrap_or_default();
    let (collection, item) = rest.split_once('/').unwrap_or((rest, ""));
    let Some(item) = percent_decode(item) else {
        return error(
            StatusCode::BAD_REQUEST,
            "malformed percent-encoding in the path",
        );
    };
    match (method, collection, item.is_empty()) {
        (&Method::GET, "clients", true) => list_clients(broker, query),
        (&Method::GET, "clients", false) => match broker.sessions.get(&item) {
            Some(session) => json_response(StatusCode::OK, &describe(&session, true)),
            None => error(
                StatusCode::NOT_FOUND,
                "no session with that client identifier",
            ),
        },
        (&Method::DELETE, "clients", false) => disconnect(broker, &item),
        (&Method::DELETE, "retained", false) => {
            if broker.retained.write().remove(&item).is_some() {
                tracing::info!(topic = %item, "retained message deleted through the admin API");
                Response::builder()
                    .status(StatusCode::NO_CONTENT)
                    .body(Full::new(Bytes::new()))
                    .unwrap_or_default()
            } else {
                error(StatusCode::NOT_FOUND, "no retained message on that topic")
            }
        }
        (_, "clients" | "retained", _) => {
            error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
        }
        _ => error(StatusCode::NOT_FOUND, "not found"),
    }
}

/// One session as JSON; with `subscriptions`, its filters too.
fn describe(session: &Session, subscriptions: bool) -> Value {
    let st = session.state.lock();
    let mut value = json!({
        "clientId": session.client_id.to_string(),
        "connected": st.attached.is_some(),
        "protocolVersion": st.attached.as_ref().map(|a| a.version.level()),
        "sessionExpiryInterval": st.expiry_interval,
        "subscriptions": st.subscriptions.len(),
        "queued": st.queue.len(),
        "inflight": st.inflight.len(),
    });
    if subscriptions {
        value["subscriptions"] = st
            .subscriptions
            .iter()
            .map(|(filter, sub)| {
                json!({
                    "filter": filter,
                    "qos": sub.options.qos.as_u8(),
                    "noLocal": sub.options.no_local,
                    "retainAsPublished": sub.options.retain_as_published,
                    "identifier": sub.identifier,
                })
            })
            .collect();
    }
    value
}

/// Sessions in client identifier order, `limit` of them after the identifier `after`.
fn list_clients(broker: &Broker, query: Option<&str>) -> Response<Full<Bytes>> {
    let mut limit = DEFAULT_LIMIT;
    let mut after = None;
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let Some(value) = percent_decode(value) else {
            return error(
                StatusCode::BAD_REQUEST,
                "malformed percent-encoding in the query",
            );
        };
        match key {
            "limit" => match value.parse::<usize>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => limit = n,
                _ => return error(StatusCode::BAD_REQUEST, "limit must be 1 to 1000"),
            },
            "after" => after = Some(value),
            _ => return error(StatusCode::BAD_REQUEST, "unknown query parameter"),
        }
    }
    let mut sessions = broker.sessions.all();
    sessions.retain(|s| after.as_deref().is_none_or(|a| &*s.client_id > a));
    sessions.sort_unstable_by(|a, b| a.client_id.cmp(&b.client_id));
    let more = sessions.len() > limit;
    sessions.truncate(limit);
    let next = more
        .then(|| sessions.last().map(|s| s.client_id.to_string()))
        .flatten();
    let clients: Vec<Value> = sessions.iter().map(|s| describe(s, false)).collect();
    json_response(StatusCode::OK, &json!({ "clients": clients, "next": next }))
}

/// Asks the client's connection to close with Administrative Action (0x98); the session
/// stays, as after any disconnection, for its expiry interval.
fn disconnect(broker: &Broker, client_id: &str) -> Response<Full<Bytes>> {
    let Some(session) = broker.sessions.get(client_id) else {
        return error(
            StatusCode::NOT_FOUND,
            "no session with that client identifier",
        );
    };
    let mut st = session.state.lock();
    let Some(attached) = &st.attached else {
        return error(StatusCode::NOT_FOUND, "the client is not connected");
    };
    let signal = std::sync::Arc::clone(&attached.signal);
    st.kick = Some(ReasonCode::AdministrativeAction);
    drop(st);
    signal.raise(Events::SESSION);
    tracing::info!(client_id, "client disconnected through the admin API");
    Response::builder()
        .status(StatusCode::ACCEPTED)
        .body(Full::new(Bytes::new()))
        .unwrap_or_default()
}

/// `%XX`-decodes `s` into UTF-8; `None` for a malformed escape or bytes that are not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_accepts_escapes_and_refuses_broken_ones() {
        assert_eq!(percent_decode("a%2Fb%20c").as_deref(), Some("a/b c"));
        assert_eq!(percent_decode("caf%C3%A9").as_deref(), Some("café"));
        assert_eq!(
            percent_decode("plain/topic").as_deref(),
            Some("plain/topic")
        );
        for broken in ["%", "%4", "%zz", "%FF"] {
            assert_eq!(percent_decode(broken), None, "{broken}");
        }
    }

    #[test]
    fn the_token_is_required_exactly_and_read_again_for_each_request() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "s3cret-token\n").unwrap();
        let token = ApiToken::from_file(&path).unwrap();
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(hyper::header::AUTHORIZATION, value.parse().unwrap());
            token.admits(&headers)
        };
        assert!(with("Bearer s3cret-token"));
        for wrong in [
            "Bearer s3cret",
            "Bearer s3cret-token2",
            "Basic s3cret-token",
            "s3cret-token",
        ] {
            assert!(!with(wrong), "{wrong}");
        }
        assert!(!token.admits(&HeaderMap::new()));
        std::fs::write(&path, "rotated").unwrap();
        assert!(
            !with("Bearer s3cret-token"),
            "the old token no longer works"
        );
        assert!(with("Bearer rotated"));
        std::fs::write(&path, "").unwrap();
        assert!(!with("Bearer "), "an emptied file admits nobody");
    }
}
