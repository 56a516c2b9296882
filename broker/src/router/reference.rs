//! A deliberately naive matcher, written straight from section 4.7, that the property tests
//! compare the tries against.

/// Whether the plain `filter` matches `topic`.
pub(crate) fn filter_matches(filter: &str, topic: &str) -> bool {
    // [MQTT-4.7.2-1]: no leading wildcard match on '$' topics.
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let f: Vec<&str> = filter.split('/').collect();
    let t: Vec<&str> = topic.split('/').collect();
    let mut i = 0;
    loop {
        // '#' matches the parent level and any number of child levels.
        if f.get(i) == Some(&"#") {
            return true;
        }
        if i == f.len() || i == t.len() {
            return i == f.len() && i == t.len();
        }
        if f[i] != "+" && f[i] != t[i] {
            return false;
        }
        i += 1;
    }
}

#[test]
fn reference_matcher_follows_the_spec_examples() {
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
