use super::*;

const FILE: &str = "\
# anonymous clients
topic read public/#

user alice
topic readwrite sensors/alice/#
topic read sensors/#
topic deny sensors/secret/#
topic rooms/+/light

user bob
topic write sensors/bob/#

pattern readwrite clients/%c/#
pattern read users/%u/inbox
";

fn acl() -> AclFile {
    AclFile::parse(FILE).expect("the example parses")
}

#[test]
fn a_user_publishes_where_a_rule_of_its_own_grants_write() {
    let alice = acl().for_client(Some("alice"), "alice-1");
    assert!(alice.may_publish("sensors/alice/temp"));
    assert!(
        alice.may_publish("rooms/kitchen/light"),
        "access defaults to readwrite"
    );
    assert!(!alice.may_publish("sensors/bob/temp"), "read only");
    assert!(
        !alice.may_publish("public/news"),
        "anonymous rules are not alice's"
    );
    let bob = acl().for_client(Some("bob"), "bob-1");
    assert!(bob.may_publish("sensors/bob/x") && !bob.may_read("sensors/bob/x"));
}

#[test]
fn deny_wins_over_any_grant() {
    let alice = acl().for_client(Some("alice"), "alice-1");
    assert!(alice.may_read("sensors/bob/temp"));
    assert!(!alice.may_read("sensors/secret/key"));
    assert!(
        !alice.may_read("sensors/secret"),
        "`#` covers its parent level"
    );
}

#[test]
fn anonymous_clients_get_the_rules_before_the_first_user_line() {
    let anonymous = acl().for_client(None, "anon");
    assert!(anonymous.may_read("public/news"));
    assert!(!anonymous.may_publish("public/news"));
    assert!(!anonymous.may_read("sensors/x"));
}

#[test]
fn patterns_apply_to_every_client_with_its_identity() {
    let alice = acl().for_client(Some("alice"), "alice-1");
    assert!(alice.may_publish("clients/alice-1/status"));
    assert!(!alice.may_publish("clients/bob-1/status"));
    assert!(alice.may_read("users/alice/inbox"));
    let unknown = acl().for_client(Some("carol"), "c");
    assert!(
        unknown.may_publish("clients/c/x"),
        "patterns need no user block"
    );
    assert!(!unknown.may_publish("sensors/alice/temp"));
    let anonymous = acl().for_client(None, "anon");
    assert!(anonymous.may_publish("clients/anon/x"));
    assert!(
        !anonymous.may_read("users//inbox"),
        "no %u pattern without a username"
    );
}

#[test]
fn connections_of_one_user_share_its_rules_and_copy_only_patterns() {
    let acl = acl();
    let (first, second) = (
        acl.for_client(Some("alice"), "a-1"),
        acl.for_client(Some("alice"), "a-2"),
    );
    assert!(
        Arc::ptr_eq(&first.own, &second.own),
        "one copy per user, not per connection"
    );
    assert_eq!(
        first.patterns.len(),
        2,
        "clients/%c/# and users/%u/inbox filled in"
    );
    assert_ne!(first.patterns, second.patterns);
}

#[test]
fn a_pattern_is_not_widened_by_wildcards_in_an_identity() {
    for client_id in ["+", "#", "a/b"] {
        let acl = acl().for_client(Some("alice"), client_id);
        assert!(!acl.may_publish("clients/x/y"), "{client_id:?}");
        assert!(!acl.may_publish("clients/a/b/y"), "{client_id:?}");
    }
    let acl = acl().for_client(Some("#"), "ok");
    assert!(!acl.may_read("users/anyone/inbox"));
}

#[test]
fn a_subscription_needs_an_overlapping_read_rule_and_no_covering_deny() {
    let alice = acl().for_client(Some("alice"), "alice-1");
    assert!(alice.may_subscribe("sensors/+/temp"));
    assert!(
        alice.may_subscribe("#"),
        "overlaps sensors/#; messages are checked one by one"
    );
    assert!(
        !alice.may_subscribe("sensors/secret/#"),
        "covered by a deny rule"
    );
    assert!(!alice.may_subscribe("sensors/secret/+"));
    assert!(!alice.may_subscribe("other/topic"), "no read rule overlaps");
    let bob = acl().for_client(Some("bob"), "bob-1");
    assert!(!bob.may_subscribe("sensors/bob/#"), "write-only");
}

/// Checks `relation` against a table of (a, b, expected).
fn check(relation: fn(&str, &str) -> bool, table: &[(&str, &str, bool)]) {
    for &(a, b, expected) in table {
        assert_eq!(relation(a, b), expected, "{a} {b}");
    }
}

#[test]
fn topic_matching_follows_section_4_7() {
    check(
        filter_matches,
        &[
            ("a/+/c", "a/b/c", true),
            ("a/+/c", "a/b/d", false),
            ("a/#", "a", true),
            ("a/#", "a/b/c", true),
            ("#", "$SYS/uptime", false),
            ("+/uptime", "$SYS/uptime", false),
            ("$SYS/#", "$SYS/uptime", true),
            ("a/b", "a/b/c", false),
            ("a/b/c", "a/b", false),
            ("+", "a", true),
            ("+", "a/b", false),
        ],
    );
}

#[test]
fn filters_overlap_when_some_topic_matches_both_either_way_round() {
    let table = [
        ("a/#", "+/b", true),
        ("a/+", "a/b/c", false),
        ("a/b", "a/b", true),
        ("a/#", "a", true),
        ("#", "$SYS/x", false),
        ("$SYS/#", "$SYS/+", true),
        ("x/+", "y/+", false),
    ];
    check(filters_overlap, &table);
    check(|a, b| filters_overlap(b, a), &table);
}

#[test]
fn a_shared_subscription_needs_read_access_to_everything_it_matches() {
    let alice = acl().for_client(Some("alice"), "alice-1");
    assert!(alice.may_share("sensors/bob/+"));
    assert!(alice.may_share("sensors/alice/#"));
    assert!(
        !alice.may_share("sensors/#"),
        "overlaps the denied sensors/secret/#: a member would drop some of the group's messages"
    );
    assert!(!alice.may_share("#"), "not all readable");
    assert!(
        alice.may_subscribe("#"),
        "while a plain subscription filters per message"
    );
}

#[test]
fn a_filter_covers_another_when_it_matches_all_its_topics() {
    check(
        filter_covers,
        &[
            ("a/#", "a/b/+", true),
            ("a/#", "a", true),
            ("a/+", "a/b", true),
            ("a/+", "a/+", true),
            ("a/+", "a/#", false),
            ("a/b", "a/+", false),
            ("+/b", "a/b", true),
            ("#", "x/#", true),
            ("$SYS/#", "#", false),
            ("#", "$SYS/x", false),
            ("a/+", "a/b/c", false),
        ],
    );
}

#[test]
fn errors_name_the_line() {
    for (text, line, reason) in [
        ("topic read a\nbogus x\n", 2, "unknown keyword"),
        ("\n\nuser\n", 3, "needs a username"),
        ("topic read\n", 1, "`read` needs a topic filter"),
        ("topic deny \n", 1, "`deny` needs a topic filter"),
        ("user a\ntopic write a/#/b\n", 2, "not a valid topic filter"),
        ("pattern read\n", 1, "`read` needs a topic filter"),
        ("topic a/#/b\n", 1, "not a valid topic filter"),
    ] {
        let (at, message) = AclFile::parse(text).expect_err(text);
        assert_eq!(at, line, "{text:?}");
        assert!(message.contains(reason), "{message:?} for {text:?}");
    }
}
