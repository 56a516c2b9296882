//! `examples/valid/*.yaml` pass the generated CRD schema (structure and CEL
//! rules) and the operator's own validation; each `examples/invalid/*.yaml`
//! is rejected by the schema or CEL *and*, where it can be deserialized at
//! all, by the operator too (an API server without CEL must not let it
//! through to a rollout).

mod common;
mod schema;

use ferrumq_operator::crd::MqttBroker;
use ferrumq_operator::plan::plan;
use kube::core::cel::Validator;
use kube::CustomResourceExt;
use serde_json::{json, Value};

fn open_api_schema() -> Value {
    let crd = MqttBroker::crd();
    let version = crd.spec.versions.first().expect("one version");
    let schema = version
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .expect("openAPIV3Schema");
    serde_json::to_value(schema).expect("schema as json")
}

fn load(kind: &str, name: &str) -> Value {
    serde_yaml::from_str(&common::example_text(kind, name)).expect("example is YAML")
}

/// Schema and CEL errors for `object` (with `old` for transition rules).
fn server_side_errors(schema: &Value, object: &Value, old: Option<&Value>) -> Vec<String> {
    let mut errors = schema::validate(schema, object);
    if let Err(cel) = Validator::new().validate(schema, object, old) {
        errors.extend(cel.into_vec().into_iter().map(|e| e.to_string()));
    }
    errors
}

#[test]
fn valid_examples_pass_schema_cel_and_operator() {
    let schema = open_api_schema();
    let names = common::example_names("valid");
    assert!(!names.is_empty());
    for name in names {
        let object = load("valid", &name);
        let errors = server_side_errors(&schema, &object, None);
        assert!(errors.is_empty(), "{name}: {errors:?}");
        let broker = common::example_broker(&name);
        plan(&broker, &common::complete_snapshot(&broker), "test")
            .unwrap_or_else(|e| panic!("{name}: operator rejects a valid example: {e}"));
    }
}

#[test]
fn invalid_examples_are_rejected_everywhere() {
    let schema = open_api_schema();
    let names = common::example_names("invalid");
    assert!(names.len() >= 5, "{names:?}");
    for name in names {
        let object = load("invalid", &name);
        let errors = server_side_errors(&schema, &object, None);
        // Each invalid example states why it is invalid in an `# expect:` line.
        let text = common::example_text("invalid", &name);
        let expect = text
            .lines()
            .find_map(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{name}: no `# expect:` line"));
        assert!(
            errors.iter().any(|e| e.contains(expect)),
            "{name}: expected an error containing {expect:?}, got {errors:?}"
        );
        match serde_yaml::from_str::<MqttBroker>(&common::example_text("invalid", &name)) {
            Err(_) => {} // rejected by the types (e.g. an unknown broker setting)
            Ok(mut broker) => {
                broker.metadata.uid = Some(common::TEST_UID.to_owned());
                let snapshot = common::complete_snapshot(&broker);
                assert!(
                    plan(&broker, &snapshot, "test").is_err(),
                    "{name}: the operator would deploy it"
                );
            }
        }
    }
}

#[test]
fn persistence_is_immutable() {
    let schema = open_api_schema();
    let old = load("valid", "persistence");
    let mut resized = old.clone();
    resized["spec"]["persistence"]["size"] = json!("50Gi");
    assert!(!server_side_errors(&schema, &resized, Some(&old)).is_empty());

    let mut new_class = old.clone();
    new_class["spec"]["persistence"]["storageClassName"] = json!("other");
    assert!(!server_side_errors(&schema, &new_class, Some(&old)).is_empty());

    let mut removed = old.clone();
    if let Some(spec) = removed["spec"].as_object_mut() {
        spec.remove("persistence");
    }
    let errors = server_side_errors(&schema, &removed, Some(&old));
    assert!(
        errors
            .iter()
            .any(|e| e.contains("cannot be added or removed")),
        "{errors:?}"
    );

    let mut scaled = old.clone();
    scaled["spec"]["replicas"] = json!(5);
    assert!(
        server_side_errors(&schema, &scaled, Some(&old)).is_empty(),
        "scaling stays allowed"
    );
}

#[test]
fn cel_rules_match_operator_messages() {
    let schema = open_api_schema();
    let both = load("invalid", "pdb-both");
    let errors = server_side_errors(&schema, &both, None);
    assert!(errors.iter().any(|e| e.contains("not both")), "{errors:?}");
    let mut long_name = load("valid", "minimal");
    long_name["metadata"]["name"] = json!("x".repeat(48));
    let errors = server_side_errors(&schema, &long_name, None);
    assert!(
        errors.iter().any(|e| e.contains("at most 47")),
        "{errors:?}"
    );
}
