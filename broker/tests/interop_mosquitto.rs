//! Interop with Eclipse Mosquitto's command-line clients (Debian's mosquitto-clients):
//! `mosquitto_pub` and `mosquitto_sub` drive a broker started in-process on an ephemeral port,
//! with `-V mqttv311` and `-V mqttv5`. Every client run is bounded (`-C N`, `-W seconds`, and a
//! timeout here). Missing binaries fail the test: run scripts/setup.
mod support;

use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::time::Duration;

use ferrumq_broker::listeners::RunningBroker;
use support::*;
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, Command};

const VERSIONS: [&str; 2] = ["mqttv311", "mqttv5"];

/// The path of a mosquitto client binary; panics (fails the test) if it is not installed.
fn bin(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path).chain([
        "/usr/bin".into(),
        "/usr/local/bin".into(),
        "/usr/sbin".into(),
    ]);
    for dir in dirs {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("{name} not found on PATH: run scripts/setup (it installs Debian's mosquitto-clients)");
}

fn common_args(broker: &RunningBroker, version: &str, id: &str) -> Vec<String> {
    let addr = broker.mqtt_addr();
    [
        "-h",
        &addr.ip().to_string(),
        "-p",
        &addr.port().to_string(),
        "-V",
        version,
        "-i",
        id,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Starts `mosquitto_sub` printing "retain qos topic payload" per message, exiting after
/// `count` messages or `-W 8` seconds.
fn spawn_sub(
    broker: &RunningBroker,
    version: &str,
    id: &str,
    filter: &str,
    qos: u8,
    count: usize,
    extra: &[&str],
) -> Child {
    Command::new(bin("mosquitto_sub"))
        .args(common_args(broker, version, id))
        .args([
            "-t",
            filter,
            "-q",
            &qos.to_string(),
            "-C",
            &count.to_string(),
            "-W",
            "8",
        ])
        .args(["-F", "%r %q %t %p"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("mosquitto_sub starts")
}

/// Runs `mosquitto_pub` to completion and asserts it succeeded.
async fn run_pub(broker: &RunningBroker, version: &str, id: &str, args: &[&str]) {
    let output = pub_output(broker, version, id, args).await;
    assert!(
        output.status.success(),
        "mosquitto_pub {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// What `mosquitto_pub` with `args` printed and how it exited.
async fn pub_output(broker: &RunningBroker, version: &str, id: &str, args: &[&str]) -> Output {
    bounded(
        Command::new(bin("mosquitto_pub"))
            .args(common_args(broker, version, id))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("mosquitto_pub starts"),
    )
    .await
}

async fn bounded(child: Child) -> Output {
    tokio::time::timeout(Duration::from_secs(15), child.wait_with_output())
        .await
        .expect("mosquitto client finished in time")
        .expect("mosquitto client output")
}

/// The lines a finished `mosquitto_sub` printed; asserts it exited 0 (all messages in time).
async fn sub_lines(child: Child) -> Vec<String> {
    let output = bounded(child).await;
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "mosquitto_sub failed ({}): stdout {stdout:?}, stderr {:?}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout.lines().map(str::to_string).collect()
}

/// Waits until the session of client `id` holds a subscription (a spawned mosquitto_sub has
/// connected and subscribed).
async fn wait_for_subscription(broker: &RunningBroker, id: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let subscribed = broker
            .broker
            .sessions
            .get(id)
            .is_some_and(|s| !s.state.lock().subscriptions.is_empty());
        if subscribed {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "mosquitto_sub {id} did not subscribe in time"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn mosquitto_pub_sub_at_each_qos() {
    let broker = start().await;
    for version in VERSIONS {
        let filter = format!("mq/{version}/#");
        let id = format!("sub-{version}");
        let sub = spawn_sub(&broker, version, &id, &filter, 2, 3, &[]);
        wait_for_subscription(&broker, &id).await;
        for qos in 0..3 {
            let topic = format!("mq/{version}/q{qos}");
            let payload = format!("hello {version} {qos}");
            run_pub(
                &broker,
                version,
                &format!("pub-{version}"),
                &["-t", &topic, "-q", &qos.to_string(), "-m", &payload],
            )
            .await;
        }
        let lines = sub_lines(sub).await;
        let expected: Vec<String> = (0..3)
            .map(|q| format!("0 {q} mq/{version}/q{q} hello {version} {q}"))
            .collect();
        assert_eq!(lines, expected, "{version}");
    }
    broker.shutdown().await;
}

/// `mosquitto_pub` and `mosquitto_sub` (OpenSSL) on an `mqtts` listener, verifying the
/// broker's certificate against the CA file they are given.
#[tokio::test]
async fn mosquitto_clients_over_tls() {
    let identity = support::tls::Identity::new();
    let broker = support::start_with(support::tls::tls_config(identity.files())).await;
    let ca = identity.path("tls.crt");
    let ca = ca.to_str().expect("a UTF-8 path");
    for version in VERSIONS {
        let id = format!("tls-sub-{version}");
        let sub = spawn_sub(&broker, version, &id, "tls/#", 1, 2, &["--cafile", ca]);
        wait_for_subscription(&broker, &id).await;
        for qos in 0..2 {
            let args = [
                "--cafile",
                ca,
                "-t",
                "tls/m",
                "-q",
                &qos.to_string(),
                "-m",
                "sealed",
            ];
            run_pub(&broker, version, &format!("tls-pub-{version}"), &args).await;
        }
        let lines = sub_lines(sub).await;
        assert_eq!(lines, ["0 0 tls/m sealed", "0 1 tls/m sealed"], "{version}");
    }
    broker.shutdown().await;
}

/// Mutual TLS with Mosquitto's clients: `--cert`/`--key` from the listener's client CA get in,
/// and with `useIdentityAsUsername` the certificate's Common Name is the user the ACL names.
#[tokio::test]
async fn mosquitto_clients_with_client_certificates() {
    let identity = support::tls::Identity::new();
    let authority = support::tls::Authority::new("devices");
    let dir = tempfile::tempdir().unwrap();
    let device = authority.issue(Some("sensor-1"));
    let (cert, key) = (dir.path().join("client.crt"), dir.path().join("client.key"));
    std::fs::write(&cert, &device.cert_pem).unwrap();
    std::fs::write(&key, &device.key_pem).unwrap();
    std::fs::write(
        dir.path().join("acl"),
        "user sensor-1\ntopic readwrite sensors/sensor-1/#\n",
    )
    .unwrap();
    let mut config = support::tls::tls_config(ferrumq_broker::config::TlsFiles {
        client_ca_file: Some(authority.cert_file()),
        use_identity_as_username: true,
        ..identity.files()
    });
    config.settings.auth.acl_file = Some(dir.path().join("acl"));
    let broker = support::start_with(config).await;
    let ca = identity.path("tls.crt");
    let tls_args = [
        "--cafile",
        ca.to_str().unwrap(),
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ];
    let sub = spawn_sub(
        &broker,
        "mqttv5",
        "mtls-sub",
        "sensors/sensor-1/#",
        1,
        1,
        &tls_args,
    );
    wait_for_subscription(&broker, "mtls-sub").await;
    let mut args = tls_args.to_vec();
    args.extend(["-t", "sensors/sensor-1/t", "-q", "1", "-m", "21.5"]);
    run_pub(&broker, "mqttv5", "mtls-pub", &args).await;
    assert_eq!(sub_lines(sub).await, ["0 1 sensors/sensor-1/t 21.5"]);

    // Without a client certificate the handshake fails and mosquitto_pub says so.
    let args = [
        "--cafile",
        ca.to_str().unwrap(),
        "-t",
        "sensors/sensor-1/t",
        "-m",
        "x",
    ];
    let output = pub_output(&broker, "mqttv5", "no-cert", &args).await;
    assert!(
        !output.status.success(),
        "a client without a certificate got in"
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn mosquitto_across_versions_and_qos_downgrade() {
    let broker = start().await;
    // A 3.1.1 subscriber at QoS 1 gets a 5.0 QoS 2 publish at QoS 1, and the other way round.
    let sub4 = spawn_sub(&broker, "mqttv311", "x-sub4", "x/to4", 1, 1, &[]);
    let sub5 = spawn_sub(&broker, "mqttv5", "x-sub5", "x/to5", 2, 1, &[]);
    wait_for_subscription(&broker, "x-sub4").await;
    wait_for_subscription(&broker, "x-sub5").await;
    run_pub(
        &broker,
        "mqttv5",
        "x-pub5",
        &["-t", "x/to4", "-q", "2", "-m", "from five"],
    )
    .await;
    run_pub(
        &broker,
        "mqttv311",
        "x-pub4",
        &["-t", "x/to5", "-q", "1", "-m", "from four"],
    )
    .await;
    assert_eq!(sub_lines(sub4).await, ["0 1 x/to4 from five"]);
    assert_eq!(sub_lines(sub5).await, ["0 1 x/to5 from four"]);
    broker.shutdown().await;
}

#[tokio::test]
async fn mosquitto_retained_messages() {
    let broker = start().await;
    for version in VERSIONS {
        let topic = format!("ret/{version}");
        run_pub(
            &broker,
            version,
            "ret-pub",
            &["-t", &topic, "-q", "1", "-r", "-m", "kept"],
        )
        .await;
        let sub = spawn_sub(&broker, version, "ret-sub", &topic, 2, 1, &[]);
        assert_eq!(sub_lines(sub).await, [format!("1 1 {topic} kept")]);
        // -n sends an empty retained message: it deletes the retained one (QoS 1: done on exit).
        run_pub(
            &broker,
            version,
            "ret-pub",
            &["-t", &topic, "-q", "1", "-r", "-n"],
        )
        .await;
    }
    assert_eq!(broker.broker.retained.read().len(), 0);
    // With nothing retained, a subscriber times out (-W 1, exit status non-zero) with no output.
    let output = bounded(
        Command::new(bin("mosquitto_sub"))
            .args(common_args(&broker, "mqttv5", "ret-none"))
            .args(["-t", "ret/#", "-C", "1", "-W", "1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap(),
    )
    .await;
    assert!(
        output.stdout.is_empty(),
        "unexpected {:?}",
        String::from_utf8_lossy(&output.stdout)
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn mosquitto_will_on_abnormal_close() {
    let broker = start().await;
    for version in VERSIONS {
        let will_topic = format!("will/{version}");
        let watcher = spawn_sub(
            &broker,
            version,
            &format!("watch-{version}"),
            &will_topic,
            1,
            1,
            &[],
        );
        // A subscriber that dies (SIGKILL, no DISCONNECT), carrying a Will.
        let mut dying = Command::new(bin("mosquitto_sub"))
            .args(common_args(&broker, version, &format!("dying-{version}")))
            .args(["-t", "nothing/here", "-W", "30"])
            .args([
                "--will-topic",
                &will_topic,
                "--will-payload",
                "died",
                "--will-qos",
                "1",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        wait_for_subscription(&broker, &format!("watch-{version}")).await;
        wait_for_subscription(&broker, &format!("dying-{version}")).await;
        dying.start_kill().unwrap();
        let _ = dying.wait().await;
        assert_eq!(sub_lines(watcher).await, [format!("0 1 {will_topic} died")]);
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn mosquitto_large_payload_from_stdin() {
    let broker = start().await;
    let payload: String = (0..100_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let sub = spawn_sub(&broker, "mqttv5", "big-sub", "big", 1, 1, &[]);
    wait_for_subscription(&broker, "big-sub").await;
    let mut publisher = Command::new(bin("mosquitto_pub"))
        .args(common_args(&broker, "mqttv311", "big-pub"))
        .args(["-t", "big", "-q", "1", "-s"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = publisher.stdin.take().unwrap();
    stdin.write_all(payload.as_bytes()).await.unwrap();
    drop(stdin);
    assert!(bounded(publisher).await.status.success());
    assert_eq!(sub_lines(sub).await, [format!("0 1 big {payload}")]);
    broker.shutdown().await;
}

/// A password file made by the live `mosquitto_passwd`, in both of its hash formats: the
/// right password connects (3.1.1 and 5.0), a wrong one or an unknown user is refused, and
/// so is a client without a username (a password file closes anonymous access).
#[tokio::test]
async fn mosquitto_passwd_files_authenticate_mosquitto_clients() {
    let dir = std::env::temp_dir().join(format!("ferrumq-passwd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("passwords");
    for (hash, user, password, create) in [
        ("sha512-pbkdf2", "alice", "wonder land", true),
        ("sha512", "bob", "s3cret", false),
    ] {
        let mut cmd = std::process::Command::new(bin("mosquitto_passwd"));
        cmd.args(["-H", hash]);
        if create {
            cmd.arg("-c");
        }
        let status = cmd
            .arg("-b")
            .arg(&file)
            .args([user, password])
            .status()
            .expect("mosquitto_passwd runs");
        assert!(status.success(), "mosquitto_passwd for {user}");
    }
    let mut config = test_config();
    config.settings.auth.password_file = Some(file.clone());
    let broker = start_with(config).await;
    let attempt = |version: &'static str, id: &'static str, creds: &'static [&'static str]| {
        let broker = &broker;
        async move {
            let mut args = vec!["-t", "auth/t", "-m", "x"];
            args.extend_from_slice(creds);
            bounded(
                Command::new(bin("mosquitto_pub"))
                    .args(common_args(broker, version, id))
                    .args(&args)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .kill_on_drop(true)
                    .spawn()
                    .expect("mosquitto_pub starts"),
            )
            .await
        }
    };
    for version in VERSIONS {
        for creds in [
            &["-u", "alice", "-P", "wonder land"][..],
            &["-u", "bob", "-P", "s3cret"],
        ] {
            let out = attempt(version, "ok", creds).await;
            assert!(
                out.status.success(),
                "{version} {creds:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        for creds in [
            &["-u", "alice", "-P", "s3cret"][..],
            &["-u", "mallory", "-P", "wonder land"],
            &[],
        ] {
            let out = attempt(version, "refused", creds).await;
            assert!(!out.status.success(), "{version} {creds:?} was let in");
        }
    }
    broker.shutdown().await;
    std::fs::remove_dir_all(&dir).ok();
}

/// A password file with a bad line stops start-up, naming the file and the line.
#[tokio::test]
async fn a_broken_password_file_stops_start_up_with_the_line_at_fault() {
    let dir = std::env::temp_dir().join(format!("ferrumq-badpasswd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("passwords");
    std::fs::write(&file, "# users\nalice:plain-text-password\n").unwrap();
    let mut config = test_config();
    config.settings.auth.password_file = Some(file.clone());
    let error = match ferrumq_broker::listeners::start(config).await {
        Ok(_) => panic!("started with a broken password file"),
        Err(error) => error.to_string(),
    };
    assert!(
        error.contains(&format!("{}:2:", file.display())),
        "the error names the file and line 2: {error}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// `ferrumq-broker passwd` writes Mosquitto's format: the Mosquitto broker itself accepts the
/// user it made, and so does FerrumQ; a wrong password is refused by both.
#[tokio::test]
async fn ferrumq_passwd_lines_are_read_by_mosquitto_and_ferrumq() {
    let dir = tempfile::tempdir().unwrap();
    let mut passwd = Command::new(env!("CARGO_BIN_EXE_ferrumq-broker"))
        .args(["passwd", "carol"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("ferrumq-broker passwd starts");
    let mut stdin = passwd.stdin.take().unwrap();
    stdin.write_all(b"open sesame\n").await.unwrap();
    drop(stdin);
    let output = bounded(passwd).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let line = String::from_utf8(output.stdout).unwrap();
    assert!(line.starts_with("carol:$7$101$"), "{line}");
    let file = dir.path().join("passwords");
    std::fs::write(&file, &line).unwrap();

    // Mosquitto, on a free loopback port, with that file as its only users.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let conf = dir.path().join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "user root\nlistener {port} 127.0.0.1\nallow_anonymous false\npassword_file {}\n",
            file.display()
        ),
    )
    .unwrap();
    let _mosquitto = Command::new(bin("mosquitto"))
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("mosquitto starts");
    let publish_to_mosquitto = |password: &'static str| {
        let port = port.to_string();
        async move {
            let args = [
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-u",
                "carol",
                "-P",
                password,
            ];
            let child = Command::new(bin("mosquitto_pub"))
                .args(args)
                .args(["-i", "carol-pub", "-t", "t", "-m", "x"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .expect("mosquitto_pub starts");
            bounded(child).await.status.success()
        }
    };
    let mut accepted = false;
    for _ in 0..50 {
        // Until Mosquitto listens (bounded: 50 tries, 100 ms apart).
        if publish_to_mosquitto("open sesame").await {
            accepted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        accepted,
        "Mosquitto accepts the user ferrumq-broker passwd made"
    );
    assert!(
        !publish_to_mosquitto("open sesam").await,
        "Mosquitto refuses a wrong password"
    );

    let mut config = test_config();
    config.settings.auth.password_file = Some(file);
    let broker = start_with(config).await;
    let creds = ["-u", "carol", "-P", "open sesame", "-t", "t", "-m", "x"];
    run_pub(&broker, "mqttv5", "carol-ferrumq", &creds).await;
    let wrong = ["-u", "carol", "-P", "open sesam", "-t", "t", "-m", "x"];
    let output = pub_output(&broker, "mqttv5", "carol-wrong", &wrong).await;
    assert!(!output.status.success(), "FerrumQ refuses a wrong password");
    broker.shutdown().await;
}
