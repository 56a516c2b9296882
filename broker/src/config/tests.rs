use super::*;

fn invalid_field(yaml: &str) -> String {
    match BrokerConfig::from_yaml_str(yaml) {
        Err(ConfigError::Invalid { field, .. }) => field,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

fn parse_error(yaml: &str) -> (String, Option<usize>) {
    match BrokerConfig::from_yaml_str(yaml) {
        Err(ConfigError::Parse { message, line, .. }) => (message, line),
        other => panic!("expected Parse, got {other:?}"),
    }
}

#[test]
fn empty_and_comment_only_documents_are_defaults() {
    for doc in ["", "\n\n", "# nothing\n---\n", "  # indented comment"] {
        assert_eq!(
            BrokerConfig::from_yaml_str(doc).unwrap(),
            BrokerConfig::default()
        );
    }
    assert_eq!(
        BrokerConfig::load_or_default(None).unwrap(),
        BrokerConfig::default()
    );
}

#[test]
fn defaults_are_documented_values() {
    let c = BrokerConfig::default();
    assert_eq!(c.listeners.len(), 1);
    assert_eq!(c.listeners[0].name, "mqtt");
    assert_eq!(c.listeners[0].bind, "0.0.0.0:1883");
    assert_eq!(c.listeners[0].protocol, ListenerProtocol::Mqtt);
    assert_eq!(c.admin.bind, "0.0.0.0:9464");
    assert_eq!(c.settings.limits.max_packet_size, 1_048_576);
    assert_eq!(c.settings.limits.receive_maximum, 1024);
    assert_eq!(c.settings.limits.max_queued_messages, 1000);
    assert_eq!(c.settings.limits.listen_backlog, 4096);
    assert_eq!(
        c.settings.limits.queue_full_policy,
        QueueFullPolicy::DropOldestQos0
    );
    assert_eq!(c.settings.features.maximum_qos, 2);
    assert_eq!(c.log.level, LogLevel::Info);
    assert_eq!(c.log.format, LogFormat::Text);
    assert!(c.settings.auth.anonymous_allowed());
    c.validate().unwrap();
}

#[test]
fn example_file_equals_defaults_and_lists_every_key() {
    let parsed = BrokerConfig::from_yaml_str(EXAMPLE_YAML).unwrap();
    assert_eq!(parsed, BrokerConfig::default());
    // Equality alone would pass if a key were missing from the example (the
    // default fills it in), so also compare the key trees.
    let example: serde_yaml::Value = serde_yaml::from_str(EXAMPLE_YAML).unwrap();
    let defaults = serde_yaml::to_value(BrokerConfig::default()).unwrap();
    assert_eq!(
        example, defaults,
        "example file and defaults differ in keys"
    );
}

#[test]
fn anonymous_default_follows_password_file() {
    let c = BrokerConfig::from_yaml_str("settings:\n  auth:\n    passwordFile: /p\n").unwrap();
    assert!(!c.settings.auth.anonymous_allowed());
    let c = BrokerConfig::from_yaml_str(
        "settings:\n  auth:\n    passwordFile: /p\n    allowAnonymous: true\n",
    )
    .unwrap();
    assert!(c.settings.auth.anonymous_allowed());
}

#[test]
fn unknown_key_names_key_and_line() {
    let yaml = "listeners:\n  - name: a\n    bind: 0.0.0.0:1\nsettings:\n  limits:\n    maxPacketSise: 5\n";
    let (message, line) = parse_error(yaml);
    assert!(message.contains("maxPacketSise"), "{message}");
    assert!(message.contains("settings.limits"), "{message}");
    assert_eq!(line, Some(6), "{message}");
    let err = BrokerConfig::from_yaml_str(yaml).unwrap_err().to_string();
    assert!(err.contains("line 6"), "{err}");
}

#[test]
fn snake_case_key_is_rejected() {
    let (message, line) = parse_error("settings:\n  limits:\n    max_packet_size: 5\n");
    assert!(message.contains("max_packet_size"), "{message}");
    assert_eq!(line, Some(3));
}

#[test]
fn bad_type_names_line() {
    let (message, line) =
        parse_error("log:\n  level: info\nsettings:\n  sys:\n    intervalSecs: soon\n");
    assert!(message.contains("intervalSecs"), "{message}");
    assert_eq!(line, Some(5), "{message}");
    let (message, line) = parse_error("listeners:\n  - name: a\n    protocol: quic\n");
    assert!(message.contains("quic"), "{message}");
    assert_eq!(line, Some(3), "{message}");
    let (_, line) = parse_error("settings:\n  features:\n    maximumQos: 300\n");
    assert_eq!(line, Some(3));
}

#[test]
fn malformed_yaml_is_a_parse_error() {
    let (_, line) = parse_error("listeners: [\n  oops: :\n");
    assert!(line.is_some());
}

#[test]
fn each_rule_names_its_field() {
    let cases: &[(&str, &str)] = &[
        ("listeners: []\n", "listeners"),
        ("listeners:\n  - name: Bad\n", "listeners[0].name"),
        (
            "listeners:\n  - name: a-very-long-listener\n",
            "listeners[0].name",
        ),
        (
            "listeners:\n  - name: x\n    bind: localhost\n",
            "listeners[0].bind",
        ),
        (
            "listeners:\n  - name: a\n  - name: a\n    bind: 0.0.0.0:2\n",
            "listeners[1].name",
        ),
        (
            "listeners:\n  - name: a\n    bind: 127.0.0.1:1883\n  - name: b\n",
            "listeners[1].bind",
        ),
        (
            "listeners:\n  - name: a\n    bind: 0.0.0.0:9464\n",
            "listeners[0].bind",
        ),
        ("admin:\n  bind: nowhere\n", "admin.bind"),
        (
            "listeners:\n  - name: s\n    protocol: mqtts\n",
            "listeners[0].tls",
        ),
        (
            "listeners:\n  - name: s\n    protocol: ws\n    tls: {certFile: a, keyFile: b}\n",
            "listeners[0].tls",
        ),
        (
            "listeners:\n  - name: s\n    protocol: wss\n    tls: {certFile: a}\n",
            "listeners[0].tls.keyFile",
        ),
        (
            "settings:\n  limits:\n    maxPacketSize: 0\n",
            "settings.limits.maxPacketSize",
        ),
        (
            "settings:\n  limits:\n    maxPacketSize: 268435456\n",
            "settings.limits.maxPacketSize",
        ),
        (
            "settings:\n  limits:\n    receiveMaximum: 0\n",
            "settings.limits.receiveMaximum",
        ),
        (
            "settings:\n  limits:\n    maxConnections: 0\n",
            "settings.limits.maxConnections",
        ),
        (
            "settings:\n  limits:\n    maxInflightOutbound: 0\n",
            "settings.limits.maxInflightOutbound",
        ),
        (
            "settings:\n  limits:\n    maxQueuedMessages: 0\n",
            "settings.limits.maxQueuedMessages",
        ),
        (
            "settings:\n  limits:\n    listenBacklog: 0\n",
            "settings.limits.listenBacklog",
        ),
        (
            "settings:\n  limits:\n    listenBacklog: 65536\n",
            "settings.limits.listenBacklog",
        ),
        (
            "settings:\n  limits:\n    maxClientIdLength: 22\n",
            "settings.limits.maxClientIdLength",
        ),
        (
            "settings:\n  features:\n    maximumQos: 3\n",
            "settings.features.maximumQos",
        ),
        (
            "settings:\n  session:\n    serverKeepAliveSecs: 0\n",
            "settings.session.serverKeepAliveSecs",
        ),
        (
            "settings:\n  session:\n    maxKeepAliveSecs: 0\n",
            "settings.session.maxKeepAliveSecs",
        ),
        (
            "settings:\n  session:\n    serverKeepAliveSecs: 100\n    maxKeepAliveSecs: 50\n",
            "settings.session.serverKeepAliveSecs",
        ),
        (
            "settings:\n  session:\n    assignClientId: false\n",
            "settings.session.allowEmptyClientId",
        ),
        (
            "settings:\n  auth:\n    allowAnonymous: false\n",
            "settings.auth.allowAnonymous",
        ),
        (
            "settings:\n  auth:\n    aclFile: ''\n",
            "settings.auth.aclFile",
        ),
    ];
    for (yaml, field) in cases {
        assert_eq!(&invalid_field(yaml), field, "for {yaml}");
    }
}

#[test]
fn ipv6_and_distinct_ips_do_not_clash() {
    let yaml = "listeners:\n  - name: a\n    bind: 127.0.0.1:1883\n  - name: b\n    bind: 127.0.0.2:1883\n  - name: c\n    bind: '[::]:1883'\n";
    BrokerConfig::from_yaml_str(yaml).unwrap();
}

#[test]
fn settings_errors_can_be_prefixed_for_the_crd() {
    let mut s = BrokerSettings::default();
    s.limits.receive_maximum = 0;
    let err = s.validate().unwrap_err().prefixed("spec.broker");
    assert_eq!(err.field(), Some("spec.broker.limits.receiveMaximum"));
}

#[test]
fn round_trip_full_config() {
    let yaml = r"
listeners:
  - name: mqtt
    bind: 0.0.0.0:1883
  - name: mqtts
    bind: 0.0.0.0:8883
    protocol: mqtts
    tls: {certFile: /tls/tls.crt, keyFile: /tls/tls.key}
  - name: ws
    bind: '[::]:8080'
    protocol: ws
admin: {bind: 127.0.0.1:9000}
settings:
  limits: {maxPacketSize: 2048, queueFullPolicy: reject}
  session: {serverKeepAliveSecs: 30, maxKeepAliveSecs: 60}
  features: {maximumQos: 1, retainAvailable: false}
  sys: {intervalSecs: 0}
  shutdown: {gracePeriodSecs: 5}
  auth: {passwordFile: /auth/passwords, aclFile: /auth/acl}
log: {level: debug, format: json}
";
    let config = BrokerConfig::from_yaml_str(yaml).unwrap();
    assert_eq!(config.listeners[1].protocol, ListenerProtocol::Mqtts);
    assert_eq!(
        config.settings.limits.queue_full_policy,
        QueueFullPolicy::Reject
    );
    let text = config.to_yaml_string().unwrap();
    assert!(!text.contains("null"), "{text}");
    assert_eq!(BrokerConfig::from_yaml_str(&text).unwrap(), config);
}

#[test]
fn defaults_serialize_without_nulls() {
    let text = BrokerConfig::default().to_yaml_string().unwrap();
    assert!(!text.contains("null"), "{text}");
    assert!(!text.contains("allowAnonymous"), "{text}");
}

#[test]
fn load_reports_missing_file_with_path() {
    let err = BrokerConfig::load("/nonexistent/ferrumq.yaml").unwrap_err();
    assert!(matches!(err, ConfigError::Io { .. }));
    assert!(err.to_string().contains("/nonexistent/ferrumq.yaml"));
}

#[test]
fn load_reads_a_file() {
    let dir = std::env::temp_dir().join(format!("ferrumq-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("c.yaml");
    std::fs::write(&path, "log: {level: warn}\n").unwrap();
    let c = BrokerConfig::load(&path).unwrap();
    assert_eq!(c.log.level, LogLevel::Warn);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn schema_describes_settings() {
    let schema = schemars::schema_for!(BrokerSettings);
    let json = serde_json::to_string(&schema).unwrap();
    assert!(json.contains("receiveMaximum"));
    assert!(json.contains("Unacknowledged QoS 1/2 PUBLISHes"));
}

#[test]
fn persistence_is_off_by_default_and_takes_a_data_directory() {
    assert_eq!(BrokerConfig::default().persistence.data_dir, None);
    let c = BrokerConfig::from_yaml_str(
        "persistence:\n  dataDir: /var/lib/ferrumq\n  autosaveIntervalSecs: 0\n",
    )
    .unwrap();
    assert_eq!(
        c.persistence.data_dir.as_deref(),
        Some(std::path::Path::new("/var/lib/ferrumq"))
    );
    assert_eq!(c.persistence.autosave_interval_secs, 0);
    let error = BrokerConfig::from_yaml_str("persistence:\n  dataDirectory: /x\n")
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("dataDirectory") && error.contains("line 2"),
        "{error}"
    );
}

#[test]
fn identity_as_username_needs_a_client_ca() {
    let yaml = "listeners:\n  - name: mqtts\n    bind: 0.0.0.0:8883\n    protocol: mqtts\n    tls:\n      certFile: /c\n      keyFile: /k\n      useIdentityAsUsername: true\n";
    let error = BrokerConfig::from_yaml_str(yaml).unwrap_err().to_string();
    assert!(
        error.contains("listeners[0].tls.useIdentityAsUsername") && error.contains("clientCaFile"),
        "{error}"
    );
    let with_ca = yaml.replace(
        "useIdentityAsUsername",
        "clientCaFile: /ca\n      useIdentityAsUsername",
    );
    BrokerConfig::from_yaml_str(&with_ca).unwrap();
}
