//! Golden snapshots of every child object built for each example in
//! `examples/valid/`. A diff in `tests/golden/<example>.yaml` is a change in
//! what the operator deploys, reviewed like code. Regenerate with
//! `UPDATE_GOLDEN=1 cargo test -p ferrumq-operator --test golden`.

mod common;

use ferrumq_operator::builders::build_all;
use ferrumq_operator::plan::plan;
use serde::Serialize;

/// Fixed image tag so goldens do not change with the crate version.
const TAG: &str = "0.0.0-test";

fn render(example: &str) -> String {
    let broker = common::example_broker(example);
    let snapshot = common::complete_snapshot(&broker);
    let plan = plan(&broker, &snapshot, TAG).unwrap_or_else(|e| panic!("{example}: {e}"));
    let children = build_all(&plan);
    let mut out = String::new();
    let mut push = |obj: &dyn erased::Yaml| {
        out.push_str("---\n");
        out.push_str(&obj.yaml());
    };
    push(&children.config_map);
    push(&children.headless_service);
    for s in &children.client_services {
        push(s);
    }
    if let Some(c) = &children.certificate {
        push(c);
    }
    push(&children.statefulset);
    if let Some(p) = &children.pdb {
        push(p);
    }
    if let Some(m) = &children.monitor {
        push(m);
    }
    out
}

mod erased {
    pub trait Yaml {
        fn yaml(&self) -> String;
    }
    impl<T: super::Serialize> Yaml for T {
        fn yaml(&self) -> String {
            serde_yaml::to_string(self).expect("child serializes")
        }
    }
}

#[test]
fn children_match_golden_files() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut stale = Vec::new();
    let examples = common::example_names("valid");
    assert!(
        examples.len() >= 5,
        "expected the example table, got {examples:?}"
    );
    for example in examples {
        let rendered = render(&example);
        let path = common::operator_dir().join(format!("tests/golden/{example}.yaml"));
        if update {
            std::fs::write(&path, &rendered).expect("write golden");
            continue;
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        if expected != rendered {
            stale.push(example);
        }
    }
    assert!(
        stale.is_empty(),
        "golden files differ for {stale:?}; inspect with UPDATE_GOLDEN=1 and git diff"
    );
}

#[test]
fn rendering_is_deterministic() {
    for example in common::example_names("valid") {
        assert_eq!(render(&example), render(&example));
    }
}
