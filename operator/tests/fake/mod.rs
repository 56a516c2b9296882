//! A tiny in-memory Kubernetes API server behind a `tower-test` mock
//! service. Instead of scripting the exact request sequence (brittle), it
//! stores objects by path and answers GET/LIST/PATCH/DELETE/POST like the real
//! thing would for the calls the operator makes, and records every write so
//! tests can assert on what the reconciler changed.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use http::{Request, Response};
use kube::client::Body;
use kube::Client;
use serde_json::{json, Value};

/// Collection names the operator lists or writes.
const COLLECTIONS: &[&str] = &[
    "secrets",
    "services",
    "configmaps",
    "statefulsets",
    "poddisruptionbudgets",
    "servicemonitors",
    "podmonitors",
    "certificates",
    "mqttbrokers",
    "events",
];

/// One recorded write.
#[derive(Debug, Clone)]
pub struct Write {
    pub method: String,
    pub path: String,
    pub body: Value,
}

impl Write {
    /// `kind` of the written object, or the last path segment.
    pub fn kind(&self) -> String {
        self.body
            .get("kind")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| self.path.rsplit('/').next().unwrap_or("").to_owned())
    }
}

#[derive(Default)]
pub struct Cluster {
    pub objects: BTreeMap<String, Value>,
    /// Served group versions for discovery, with their kinds.
    pub groups: BTreeMap<String, Vec<(String, String)>>,
    pub writes: Vec<Write>,
    /// Fail requests whose `METHOD path` contains this with the given code.
    pub fail: Option<(String, u16)>,
    next_uid: u64,
}

fn not_found(what: &str) -> (u16, Value) {
    (
        404,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": format!("{what} not found"), "reason": "NotFound", "code": 404}),
    )
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn label_selector(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter_map(|kv| kv.strip_prefix("labelSelector="))
        .flat_map(|sel| {
            percent_decode(sel)
                .split(',')
                .filter_map(|p| p.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
                .collect::<Vec<_>>()
        })
        .collect()
}

impl Cluster {
    /// Serves `monitoring.coreos.com/v1` (ServiceMonitor, PodMonitor).
    pub fn with_prometheus_operator(mut self) -> Self {
        self.groups.insert(
            "monitoring.coreos.com/v1".into(),
            vec![
                ("servicemonitors".into(), "ServiceMonitor".into()),
                ("podmonitors".into(), "PodMonitor".into()),
            ],
        );
        self
    }

    /// Serves `cert-manager.io/v1` Certificate.
    pub fn with_cert_manager(mut self) -> Self {
        self.groups.insert(
            "cert-manager.io/v1".into(),
            vec![("certificates".into(), "Certificate".into())],
        );
        self
    }

    pub fn put(&mut self, path: &str, obj: Value) {
        self.objects.insert(path.to_owned(), obj);
    }

    pub fn get(&self, path: &str) -> Option<&Value> {
        self.objects.get(path)
    }

    /// Writes other than events and status patches: what touched children.
    pub fn child_writes(&self) -> Vec<&Write> {
        self.writes
            .iter()
            .filter(|w| !w.path.ends_with("/status") && !w.path.contains("/events"))
            .collect()
    }

    pub fn status_writes(&self) -> Vec<&Write> {
        self.writes
            .iter()
            .filter(|w| w.path.ends_with("/status"))
            .collect()
    }

    pub fn events(&self) -> Vec<&Write> {
        self.writes
            .iter()
            .filter(|w| w.path.contains("/events"))
            .collect()
    }

    pub fn event_reasons(&self) -> Vec<String> {
        self.events()
            .iter()
            .filter_map(|w| {
                w.body
                    .get("reason")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .collect()
    }

    fn handle(&mut self, method: &str, path: &str, query: &str, body: &[u8]) -> (u16, Value) {
        if let Some((needle, code)) = &self.fail {
            if format!("{method} {path}").contains(needle.as_str()) {
                return (
                    *code,
                    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                           "message": "injected failure", "reason": "InternalError", "code": code}),
                );
            }
        }
        let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        // Discovery: GET /apis/<group>/<version>
        if method == "GET" && segments.len() == 3 && segments[0] == "apis" {
            let gv = format!("{}/{}", segments[1], segments[2]);
            return match self.groups.get(&gv) {
                Some(kinds) => (
                    200,
                    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
                           "resources": kinds.iter().map(|(plural, kind)| json!({
                               "name": plural, "singularName": "", "namespaced": true, "kind": kind,
                               "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]
                           })).collect::<Vec<_>>()}),
                ),
                None => not_found(&gv),
            };
        }
        let last = *segments.last().unwrap_or(&"");
        if method == "POST" && last == "events" {
            self.writes.push(Write {
                method: method.into(),
                path: path.into(),
                body: body.clone(),
            });
            return (201, body);
        }
        if method == "GET" && COLLECTIONS.contains(&last) {
            let selector = label_selector(query);
            let prefix = format!("{path}/");
            let items: Vec<Value> = self
                .objects
                .iter()
                .filter(|(k, _)| k.starts_with(&prefix) && !k[prefix.len()..].contains('/'))
                .filter(|(_, v)| {
                    selector.iter().all(|(k, want)| {
                        v.pointer("/metadata/labels")
                            .and_then(|l| l.get(k))
                            .and_then(Value::as_str)
                            == Some(want.as_str())
                    })
                })
                .map(|(_, v)| v.clone())
                .collect();
            return (
                200,
                json!({"kind": "List", "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": items}),
            );
        }
        if last == "status" && method == "PATCH" {
            self.writes.push(Write {
                method: method.into(),
                path: path.into(),
                body: body.clone(),
            });
            let obj_path = path.trim_end_matches("/status");
            let Some(obj) = self.objects.get_mut(obj_path) else {
                return not_found(obj_path);
            };
            if let (Some(map), Some(status)) = (obj.as_object_mut(), body.get("status")) {
                map.insert("status".into(), status.clone());
            }
            return (200, obj.clone());
        }
        match method {
            "GET" => match self.objects.get(path) {
                Some(obj) => (200, obj.clone()),
                None => not_found(path),
            },
            "PATCH" => {
                self.writes.push(Write {
                    method: method.into(),
                    path: path.into(),
                    body: body.clone(),
                });
                let mut obj = body;
                let existing = self.objects.get(path).cloned();
                self.next_uid += 1;
                let generation = existing
                    .as_ref()
                    .and_then(|e| e.pointer("/metadata/generation").and_then(Value::as_i64))
                    .map_or(1, |g| {
                        let changed =
                            existing.as_ref().and_then(|e| e.get("spec")) != obj.get("spec");
                        if changed {
                            g + 1
                        } else {
                            g
                        }
                    });
                if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                    meta.insert("generation".into(), json!(generation));
                    meta.insert("resourceVersion".into(), json!(self.next_uid.to_string()));
                    let uid = existing
                        .as_ref()
                        .and_then(|e| e.pointer("/metadata/uid").cloned())
                        .unwrap_or_else(|| json!(format!("uid-{}", self.next_uid)));
                    meta.insert("uid".into(), uid);
                }
                if let (Some(status), Some(map)) = (
                    existing.as_ref().and_then(|e| e.get("status")),
                    obj.as_object_mut(),
                ) {
                    map.insert("status".into(), status.clone());
                }
                self.objects.insert(path.to_owned(), obj.clone());
                (200, obj)
            }
            "DELETE" => {
                self.writes.push(Write {
                    method: method.into(),
                    path: path.into(),
                    body: Value::Null,
                });
                match self.objects.remove(path) {
                    Some(_) => (
                        200,
                        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 200}),
                    ),
                    None => not_found(path),
                }
            }
            _ => (
                405,
                json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "code": 405}),
            ),
        }
    }
}

/// A kube `Client` whose requests are answered by `cluster`.
pub fn client(cluster: Arc<Mutex<Cluster>>) -> Client {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    tokio::spawn(async move {
        while let Some((request, send)) = handle.next_request().await {
            let (parts, body) = request.into_parts();
            let bytes = body.collect_bytes().await.expect("request body");
            let (code, value) = cluster.lock().expect("cluster lock").handle(
                parts.method.as_str(),
                parts.uri.path(),
                parts.uri.query().unwrap_or(""),
                &bytes,
            );
            let response = Response::builder()
                .status(code)
                .header("content-type", "application/json")
                .body(Body::from(serde_json::to_vec(&value).expect("json")))
                .expect("response");
            send.send_response(response);
        }
    });
    Client::new(service, "default")
}
