//! Topic names and topic filters (section 4.7): which characters may stand where.

/// Prefix of a shared subscription filter, `$share/{ShareName}/{filter}` (section 4.8.2).
pub const SHARED_PREFIX: &str = "$share/";

/// A topic name as a PUBLISH carries it: at least one character [MQTT-4.7.3-1] and no
/// wildcard characters [MQTT-3.3.2-2].
pub fn is_valid_topic_name(name: &str) -> bool {
    // Bytes, not chars: '+' and '#' are ASCII, and no byte of a multi-byte UTF-8 sequence is.
    !name.is_empty() && !name.bytes().any(|b| b == b'+' || b == b'#')
}

/// A topic filter as SUBSCRIBE and UNSUBSCRIBE carry it, shared subscriptions included.
pub fn is_valid_topic_filter(filter: &str) -> bool {
    match split_shared(filter) {
        Some(Ok((_, inner))) => is_valid_plain_filter(inner),
        Some(Err(())) => false,
        None => is_valid_plain_filter(filter),
    }
}

/// A filter without the `$share/` prefix: non-empty [MQTT-4.7.3-1]; `#` alone or last after a
/// `/` [MQTT-4.7.1-1]; `+` filling a whole level [MQTT-4.7.1-2].
pub fn is_valid_plain_filter(filter: &str) -> bool {
    if filter.is_empty() {
        return false;
    }
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        let is_last = levels.peek().is_none();
        match level {
            "#" if is_last => {}
            "+" => {}
            _ if level.contains(['+', '#']) => return false,
            _ => {}
        }
    }
    true
}

/// Splits `$share/{group}/{filter}` into the group and the filter.
/// `None` for a filter that is not shared; `Some(Err(()))` for a malformed shared filter (empty
/// share name, a wildcard in it, or no filter after it: section 4.8.2).
pub fn split_shared(filter: &str) -> Option<Result<(&str, &str), ()>> {
    let rest = filter.strip_prefix(SHARED_PREFIX)?;
    let Some((group, inner)) = rest.split_once('/') else {
        return Some(Err(()));
    };
    if group.is_empty() || group.contains(['+', '#']) || inner.is_empty() {
        return Some(Err(()));
    }
    Some(Ok((group, inner)))
}

/// Whether `filter` contains a wildcard character.
pub fn has_wildcard(filter: &str) -> bool {
    filter.contains(['+', '#'])
}

/// Whether `topic` matches the plain `filter` (section 4.7): `+` one level, `#` this level and all below
/// (its parent too); a wildcard first level does not match a topic starting with `$`
/// [MQTT-4.7.2-1]. The tries match many filters at once; this checks one (topic rules, and
/// the tries' property tests).
pub fn filter_matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && filter.starts_with(['+', '#']) {
        return false;
    }
    let mut topic_levels = topic.split('/');
    for level in filter.split('/') {
        match (level, topic_levels.next()) {
            ("#", _) => return true,
            ("+", Some(_)) => {}
            (literal, Some(t)) if literal == t => {}
            _ => return false,
        }
    }
    topic_levels.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mqtt_4_7_1_1_multi_level_wildcard_must_be_last_and_alone_in_its_level() {
        for ok in ["#", "sport/#", "sport/tennis/#", "/#"] {
            assert!(is_valid_topic_filter(ok), "{ok}");
        }
        for bad in ["sport/tennis#", "sport/#/ranking", "#/", "a/b#"] {
            assert!(!is_valid_topic_filter(bad), "{bad}");
        }
    }

    #[test]
    fn mqtt_4_7_1_2_single_level_wildcard_must_fill_its_level() {
        for ok in ["+", "+/tennis/#", "sport/+/player1", "/+", "+/+"] {
            assert!(is_valid_topic_filter(ok), "{ok}");
        }
        for bad in ["sport+", "sport/+x", "a+/b"] {
            assert!(!is_valid_topic_filter(bad), "{bad}");
        }
    }

    #[test]
    fn mqtt_4_7_3_1_topics_and_filters_are_at_least_one_character() {
        assert!(!is_valid_topic_name(""));
        assert!(!is_valid_topic_filter(""));
        assert!(is_valid_topic_name("/"));
    }

    #[test]
    fn mqtt_3_3_2_2_topic_names_have_no_wildcards() {
        assert!(!is_valid_topic_name("a/+"));
        assert!(!is_valid_topic_name("a/#"));
        assert!(is_valid_topic_name("$SYS/broker/uptime"));
    }

    #[test]
    fn shared_subscription_filters_of_section_4_8_2() {
        assert_eq!(split_shared("$share/g/a/+"), Some(Ok(("g", "a/+"))));
        assert_eq!(split_shared("a/b"), None);
        assert_eq!(split_shared("$share/g"), Some(Err(())));
        assert_eq!(split_shared("$share//a"), Some(Err(())));
        assert_eq!(split_shared("$share/g+/a"), Some(Err(())));
        assert_eq!(split_shared("$share/g/"), Some(Err(())));
        assert!(!is_valid_topic_filter("$share/g/a#"));
        assert!(is_valid_topic_filter("$share/g/#"));
    }

    #[test]
    fn mqtt_4_7_filter_matching_follows_the_spec_examples() {
        assert!(filter_matches(
            "sport/tennis/player1/#",
            "sport/tennis/player1"
        ));
        assert!(filter_matches(
            "sport/tennis/player1/#",
            "sport/tennis/player1/score/wimbledon"
        ));
        assert!(filter_matches("sport/#", "sport"));
        assert!(filter_matches("sport/+", "sport/"));
        assert!(!filter_matches("sport/+", "sport"));
        assert!(!filter_matches(
            "sport/tennis/+",
            "sport/tennis/player1/ranking"
        ));
        assert!(filter_matches("+/+", "/finance"));
        assert!(!filter_matches("+", "/finance"));
        assert!(!filter_matches("#", "$SYS/x"));
        assert!(filter_matches("$SYS/#", "$SYS/x"));
    }
}
