//! Authentication and authorization end to end: a devcluster process, a
//! broker process with principals (bearer tokens, and mutual TLS with test
//! certificates made here with rcgen), and callers that try what they must
//! not. Each refusal is checked to have changed nothing.

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use agora_tests::{
    Process, SETTLE, as_status, binary_path, broker_with_config,
    client::{self, Acquire, ConnectOptions, Frontend, Slot, Task, TlsOptions, api, connect_admin},
    devcluster,
};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use tonic::Code;

/// A fresh directory for one test's configuration and certificates.
fn scratch(test: &str) -> PathBuf {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let dir = std::env::temp_dir().join(format!(
        "agora-security-{test}-{}-{stamp}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("create the scratch directory");
    dir
}

/// What `agora hash-token` prints for `token`.
fn hash_token(token: &str) -> String {
    let mut child = Command::new(binary_path("agora"))
        .arg("hash-token")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start agora hash-token");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(format!("{token}\n").as_bytes())
        .expect("write the token");
    let output = child.wait_with_output().expect("agora hash-token runs");
    assert!(output.status.success(), "agora hash-token: {output:?}");
    String::from_utf8(output.stdout)
        .expect("hex is UTF-8")
        .trim()
        .to_owned()
}

fn token(name: &str) -> ConnectOptions {
    ConnectOptions::new().token(format!("{name}-token"))
}

/// A token principal's TOML.
fn token_principal(name: &str, namespaces: &[&str], admin: bool) -> String {
    format!(
        "[[auth.principals]]\nname = {name:?}\ntoken_sha256 = {:?}\nnamespaces = {namespaces:?}\nadmin = {admin}\n",
        hash_token(&format!("{name}-token"))
    )
}

/// Pool settings that keep offers for the whole test, so leases are there
/// to take and nothing is declined under us.
const NAMESPACES: &str = r#"
[[namespaces]]
name = "default"
[[namespaces]]
name = "other"
[broker]
pool_ttl = "120s"
warm_pool = 10
"#;

/// Subscribes `frontend` in `namespace` with the token of principal `name`.
async fn subscribe(
    url: &str,
    name: &str,
    frontend: &str,
    namespace: &str,
) -> Result<(Frontend, client::Events), client::Error> {
    Frontend::subscribe_with_options(url, frontend, &[namespace], &token(name)).await
}

async fn secured_cluster(dir: &Path, config: &str) -> (Process, Process) {
    let path = dir.join("agora.toml");
    std::fs::write(&path, config).expect("write agora.toml");
    let master = devcluster(2, &["--allocation-interval", "100ms"]).await;
    let broker = broker_with_config(master.url(), &path, &[]).await;
    (master, broker)
}

fn code_of<T: std::fmt::Debug>(result: Result<T, client::Error>) -> Code {
    as_status(result.expect_err("the call is refused")).code()
}

async fn lease_ids(frontend: &mut Frontend) -> Vec<String> {
    let mut ids: Vec<String> = frontend
        .list_leases()
        .await
        .expect("list leases")
        .into_iter()
        .map(|lease| lease.id)
        .collect();
    ids.sort();
    ids
}

#[test]
fn hash_token_prints_the_sha256_of_stdin() {
    // SHA-256 of "abc", from FIPS 180-2.
    assert_eq!(
        hash_token("abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[test]
fn serve_refuses_to_start_open_by_accident() {
    let output = Command::new(binary_path("agora"))
        .args([
            "serve",
            "--master",
            "http://127.0.0.1:1",
            "--listen",
            "127.0.0.1:0",
        ])
        .env_remove("AGORA_INSECURE")
        .env_remove("AGORA_CONFIG")
        .output()
        .expect("run agora serve");
    assert_eq!(output.status.code(), Some(64), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("[[auth.principals]]") && stderr.contains("--insecure"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_grant_namespaces_and_keep_sessions_leases_and_tasks_private() {
    let dir = scratch("tokens");
    let config = format!(
        "{NAMESPACES}{}{}{}{}",
        token_principal("alice", &["default"], false),
        token_principal("bob", &["default", "other"], false),
        token_principal("carol", &["other"], false),
        token_principal("root", &[], true),
    );
    let (_master, broker) = secured_cluster(&dir, &config).await;
    let url = broker.url();

    // Nobody gets in without a token, or with a wrong one.
    let anonymous = Frontend::subscribe(url, "anon", &["default"]).await;
    assert_eq!(code_of(anonymous), Code::Unauthenticated);
    let wrong = ConnectOptions::new().token("alice-token-but-wrong");
    let guessed = Frontend::subscribe_with_options(url, "anon", &["default"], &wrong).await;
    assert_eq!(code_of(guessed), Code::Unauthenticated);

    // Alice holds one lease and runs a task on another.
    let (mut alice, _alice_events) = subscribe(url, "alice", "alice-fe", "default")
        .await
        .expect("alice subscribes in her namespace");
    let leases = alice
        .acquire(
            Acquire::new("default")
                .slot(Slot::new(0.5, 64.0).count(2))
                .wait_for(SETTLE),
        )
        .await
        .expect("two leases within the settle time");
    let held = leases[0].id.clone();
    let launched = alice
        .launch(
            &leases[1].id,
            Task::shell("long", "sleep 120").resources(0.5, 64.0),
        )
        .await
        .expect("launch");
    let task = launched.task_id.clone();
    let alice_leases = lease_ids(&mut alice).await;
    assert_eq!(alice_leases, vec![held.clone()]);

    // A namespace that was not granted.
    let status = as_status(
        subscribe(url, "carol", "carol-fe", "default")
            .await
            .expect_err("carol has no grant in default"),
    );
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(status.message().contains("\"default\""), "{status:?}");

    // Another principal's frontend name.
    let taken = subscribe(url, "bob", "alice-fe", "default").await;
    assert_eq!(code_of(taken), Code::PermissionDenied);

    // Bob, with a session of his own, reaches for Alice's things.
    let (mut bob, _bob_events) = subscribe(url, "bob", "bob-fe", "default")
        .await
        .expect("bob subscribes");
    let alice_session = alice.session_id().to_owned();
    let raw = bob.raw();
    let foreign = raw
        .list_leases(api::ListLeasesRequest {
            session_id: alice_session.clone(),
            namespace: String::new(),
        })
        .await
        .expect_err("another principal's session");
    assert_eq!(foreign.code(), Code::NotFound);
    assert!(
        foreign.message().contains("unknown or has ended"),
        "answered as if it did not exist: {foreign:?}"
    );
    let release = raw
        .release(api::ReleaseRequest {
            session_id: alice_session.clone(),
            lease_ids: vec![held.clone()],
            refuse_for: None,
        })
        .await
        .expect_err("release through another principal's session");
    assert_eq!(release.code(), Code::NotFound);
    let kill = raw
        .kill(api::KillRequest {
            session_id: alice_session.clone(),
            task_ids: vec![task.clone()],
            grace: None,
        })
        .await
        .expect_err("kill through another principal's session");
    assert_eq!(kill.code(), Code::NotFound);
    let acquire = raw
        .acquire(api::AcquireRequest {
            session_id: alice_session,
            namespace: "default".into(),
            slots: vec![api::SlotRequest {
                resources: Some(api::Resources {
                    cpus: 0.1,
                    mem_mb: 16.0,
                    ..Default::default()
                }),
                count: 1,
                ..Default::default()
            }],
            ..Default::default()
        })
        .await
        .expect_err("acquire through another principal's session");
    assert_eq!(acquire.code(), Code::NotFound);

    // Through his own session, Alice's lease and task do not exist for him.
    let held_ref = held.as_str();
    assert_eq!(
        code_of(bob.release(&[held_ref], SETTLE).await),
        Code::NotFound
    );
    assert_eq!(code_of(bob.hold(&[held_ref], SETTLE).await), Code::NotFound);
    let stolen = bob
        .launch(held_ref, Task::shell("stolen", "true").resources(0.1, 16.0))
        .await;
    assert_eq!(code_of(stolen), Code::NotFound);
    assert_eq!(code_of(bob.kill(&[task.as_str()]).await), Code::NotFound);

    // The Admin service is for admins only.
    let mut bob_admin = connect_admin(url, &token("bob")).await.expect("connect");
    let denied = bob_admin
        .list_namespaces(api::ListNamespacesRequest {})
        .await
        .expect_err("bob is no admin");
    assert_eq!(denied.code(), Code::PermissionDenied);
    // Nor may he see every frontend's tasks or waiting requests.
    let denied = bob_admin
        .list_all_tasks(api::ListAllTasksRequest::default())
        .await
        .expect_err("bob is no admin");
    assert_eq!(denied.code(), Code::PermissionDenied);
    let denied = bob_admin
        .list_waiting_requests(api::ListWaitingRequestsRequest::default())
        .await
        .expect_err("bob is no admin");
    assert_eq!(denied.code(), Code::PermissionDenied);
    let mut nobody = connect_admin(url, &ConnectOptions::new())
        .await
        .expect("connect");
    let denied = nobody
        .list_namespaces(api::ListNamespacesRequest {})
        .await
        .expect_err("no credentials");
    assert_eq!(denied.code(), Code::Unauthenticated);
    let mut root = connect_admin(url, &token("root")).await.expect("connect");
    if let Err(status) = root.list_namespaces(api::ListNamespacesRequest {}).await {
        assert!(
            !matches!(
                status.code(),
                Code::PermissionDenied | Code::Unauthenticated
            ),
            "an admin is let in: {status:?}"
        );
    }

    // Nothing of Alice's changed.
    assert_eq!(lease_ids(&mut alice).await, alice_leases);
    let tasks = alice.list_tasks().await.expect("list tasks");
    let mine = tasks
        .iter()
        .find(|t| t.task_id == task)
        .expect("alice's task is still hers");
    assert!(
        !matches!(
            mine.state(),
            api::TaskState::Killing | api::TaskState::Killed
        ),
        "{mine:?}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// A CA, and certificates it signs.
struct Authority {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Authority {
    fn new(name: &str) -> Authority {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("CA key");
        Authority {
            issuer: CertifiedIssuer::self_signed(params, key).expect("CA certificate"),
        }
    }

    /// A certificate for `names` with subject CN `cn`: (cert PEM, key PEM).
    fn sign(&self, cn: &str, names: &[&str]) -> (String, String) {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names).expect("leaf params");
        params.distinguished_name.push(DnType::CommonName, cn);
        let key = KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &self.issuer).expect("sign");
        (cert.pem(), key.serialize_pem())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_names_the_principal_by_its_verified_certificate() {
    let dir = scratch("mtls");
    let ca = Authority::new("agora test CA");
    let rogue = Authority::new("rogue CA");
    let (server_cert, server_key) = ca.sign("agora", &["localhost"]);
    let write = |name: &str, contents: &str| {
        let path = dir.join(name);
        std::fs::write(&path, contents).expect("write a PEM file");
        path
    };
    let config = format!(
        "{NAMESPACES}[[auth.principals]]\nname = \"ops\"\ntls_subject = \"ops\"\nnamespaces = [\"default\"]\nadmin = true\n[tls]\ncert = {:?}\nkey = {:?}\nclient_ca = {:?}\n",
        write("server.pem", &server_cert),
        write("server.key", &server_key),
        write("ca.pem", &ca.issuer.pem()),
    );
    let (_master, broker) = secured_cluster(&dir, &config).await;
    let url = broker.url();
    assert!(url.starts_with("https://"), "{url}");
    let tls = || TlsOptions::new(ca.issuer.pem()).domain("localhost");
    let as_client =
        |(cert, key): (String, String)| ConnectOptions::new().tls(tls().identity(cert, key));

    // The right CA and a CN that names a principal: in, admin included.
    let (mut ops, _events) = Frontend::subscribe_with_options(
        url,
        "ops-fe",
        &["default"],
        &as_client(ca.sign("ops", &[])),
    )
    .await
    .expect("ops subscribes with its certificate");
    let lease = agora_tests::one_lease(&mut ops, 0.5, 64.0).await;
    let before = lease_ids(&mut ops).await;
    assert_eq!(before, vec![lease.id.clone()]);
    let mut admin = connect_admin(url, &as_client(ca.sign("ops", &[])))
        .await
        .expect("connect as ops");
    if let Err(status) = admin.list_namespaces(api::ListNamespacesRequest {}).await {
        assert!(
            !matches!(
                status.code(),
                Code::PermissionDenied | Code::Unauthenticated
            ),
            "ops is an admin: {status:?}"
        );
    }

    // A certificate from a CA the broker does not trust, or none at all:
    // the handshake fails, no call gets through.
    for (who, options) in [
        ("rogue CA", as_client(rogue.sign("ops", &[]))),
        ("no certificate", ConnectOptions::new().tls(tls())),
    ] {
        match Frontend::subscribe_with_options(url, "ops-fe", &["default"], &options).await {
            Ok(_) => panic!("{who}: let in"),
            Err(client::Error::Connect { .. }) => {}
            // With TLS 1.3 the client finishes its side of the handshake
            // before the server refuses the certificate, so the refusal
            // arrives as a broken connection on the first call: a status
            // made by the client's transport (UNAVAILABLE, CANCELLED or
            // UNKNOWN, by timing), never an answer of the broker.
            Err(client::Error::Status(status)) => {
                let transport = std::error::Error::source(&status)
                    .is_some_and(|e| e.downcast_ref::<tonic::transport::Error>().is_some());
                assert!(transport, "{who}: {status:?}");
            }
            Err(other) => panic!("{who}: {other}"),
        }
    }

    // The right CA, but a CN that names no principal.
    let stranger = Frontend::subscribe_with_options(
        url,
        "stranger-fe",
        &["default"],
        &as_client(ca.sign("stranger", &[])),
    )
    .await;
    assert_eq!(code_of(stranger), Code::Unauthenticated);

    assert_eq!(lease_ids(&mut ops).await, before, "nothing changed");
    let _ = std::fs::remove_dir_all(dir);
}
