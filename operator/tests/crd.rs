//! `crds/mqttbroker.yaml` must be exactly what the code generates, so the
//! installed CRD never silently lags behind the types. Regenerate with
//! `cargo run -p ferrumq-operator -- crd > crds/mqttbroker.yaml` or
//! `UPDATE_GOLDEN=1 cargo test -p ferrumq-operator --test crd`.

use std::path::PathBuf;

fn crd_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../crds/mqttbroker.yaml")
}

#[test]
fn crd_file_matches_generated() {
    let generated = ferrumq_operator::crd::crd_yaml().expect("CRD serializes");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(crd_path(), &generated).expect("write crds/mqttbroker.yaml");
        return;
    }
    let on_disk = std::fs::read_to_string(crd_path()).unwrap_or_default();
    assert!(
        on_disk == generated,
        "crds/mqttbroker.yaml is out of date; run `cargo run -p ferrumq-operator -- crd > crds/mqttbroker.yaml`"
    );
}
