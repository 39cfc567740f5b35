//! The files in `deploy/`, run as written where this machine can run them: the container image's
//! health check command, and the Kubernetes Deployment's settings and probes against the binary.
//! (The proxy configurations are run by `cargo xtask replicas`; no image registry or cluster is
//! reachable here, so the image and the manifests themselves are not built or applied.)

mod common;

use std::path::Path;
use std::process::Command;

use common::{Running, repo};

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn sqlite_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}/vmcp.db", dir.path().display())
}

fn port_of(base: &str) -> String {
    base.rsplit(':').next().unwrap().to_string()
}

/// The Dockerfile's HEALTHCHECK, run as Docker runs its exec form, with the image's `VMCP_BIND`
/// naming the port: alive while vMCP answers HTTP there; not when something there accepts the
/// connection but never answers, nor once vMCP has stopped.
#[test]
fn the_image_health_check_passes_while_vmcp_answers_and_fails_otherwise() {
    let dockerfile = read("deploy/Dockerfile");
    let line = dockerfile
        .lines()
        .find(|l| l.starts_with("HEALTHCHECK"))
        .expect("the Dockerfile has a HEALTHCHECK");
    let argv: Vec<String> = serde_json::from_str(&line[line.find("CMD ").unwrap() + 4..])
        .expect("the HEALTHCHECK's exec form is a JSON array");
    assert!(dockerfile.contains("ENV VMCP_BIND=0.0.0.0:8000"));
    if !Path::new(&argv[0]).exists() {
        eprintln!("SKIPPED: the image's health check needs {}", argv[0]);
        return;
    }
    let check = |port: &str| {
        Command::new(&argv[0])
            .args(&argv[1..])
            .env("VMCP_BIND", format!("0.0.0.0:{port}"))
            .output()
            .unwrap()
    };
    // A port that takes connections and never answers (a hung process) is not alive.
    let mute = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mute_port = mute.local_addr().unwrap().port().to_string();
    assert!(!check(&mute_port).status.success(), "a mute port passed");
    let dir = tempfile::tempdir().unwrap();
    let mut vmcp = Running::start(
        &["--bind", "127.0.0.1:0"],
        &[("VMCP_DATABASE_URL", &sqlite_url(&dir))],
    );
    let port = port_of(&vmcp.base());
    let alive = check(&port);
    assert!(
        alive.status.success(),
        "vMCP serves, the check failed: {}",
        String::from_utf8_lossy(&alive.stderr)
    );
    assert!(vmcp.terminate().success());
    assert!(!check(&port).status.success(), "a stopped vMCP passed");
}

/// The environment of the Deployment's container: `(name, literal value or None)`.
fn manifest_env(manifest: &str) -> Vec<(String, Option<String>)> {
    let mut env = Vec::new();
    for line in manifest.lines() {
        let Some(at) = line.find("name: VMCP_") else {
            continue;
        };
        let rest = &line[at + "name: ".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_uppercase() || *c == '_')
            .collect();
        let value = rest
            .find("value: \"")
            .map(|v| rest[v + 8..].split('"').next().unwrap().to_string());
        env.push((name, value));
    }
    env
}

/// Every setting the Deployment and the image name is one the binary reads; started with the
/// Deployment's values (its secrets filled in), vMCP passes its probes as the kubelet sends them:
/// the readiness `httpGet` under `Host: POD_IP:PORT` with no token, the liveness TCP connect.
#[test]
fn the_kubernetes_settings_start_vmcp_and_its_probes_pass_as_the_kubelet_sends_them() {
    let manifest = read("deploy/kubernetes/deployment.yaml");
    let env = manifest_env(&manifest);
    let names: Vec<&str> = env.iter().map(|(n, _)| n.as_str()).collect();
    for expected in [
        "VMCP_BIND",
        "VMCP_REPLICA_ID",
        "VMCP_ALLOWED_HOSTS",
        "VMCP_SESSION_KEY",
        "VMCP_API_TOKENS",
        "VMCP_DATABASE_URL",
    ] {
        assert!(names.contains(&expected), "{expected} not in {names:?}");
    }
    let help = Command::new(env!("CARGO_BIN_EXE_vmcp"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    let image_env: Vec<String> = read("deploy/Dockerfile")
        .lines()
        .filter_map(|l| l.strip_prefix("ENV "))
        .map(|l| l.split('=').next().unwrap().to_string())
        .collect();
    for name in names
        .iter()
        .copied()
        .chain(image_env.iter().map(String::as_str))
    {
        // `[env: NAME=]`, or `[env: NAME]` for a setting whose value the help hides.
        assert!(
            help.contains(&format!("[env: {name}=")) || help.contains(&format!("[env: {name}]")),
            "{name} is not a setting of vmcp"
        );
    }

    let dir = tempfile::tempdir().unwrap();
    let database = sqlite_url(&dir);
    let pod = "vmcp-7d9f8c6b5-x2k4q";
    let mut vars: Vec<(&str, &str)> = env
        .iter()
        .filter(|(n, _)| n != "VMCP_BIND")
        .filter_map(|(n, v)| v.as_deref().map(|v| (n.as_str(), v)))
        .collect();
    vars.extend([
        ("VMCP_REPLICA_ID", pod),
        (
            "VMCP_SESSION_KEY",
            "a-session-key-of-the-secret-32-chars-or-more",
        ),
        ("VMCP_API_TOKENS", "the-deployment-token"),
        ("VMCP_DATABASE_URL", database.as_str()),
    ]);
    // On the pod's address in the cluster; on loopback here.
    let mut vmcp = Running::start(&["--bind", "127.0.0.1:0"], &vars);
    let base = vmcp.base();
    let port = port_of(&base);
    let client = reqwest::blocking::Client::new();

    assert!(
        manifest.contains("httpGet: {path: /health, port: http}"),
        "the readiness probe changed: update this test"
    );
    let ready = client
        .get(format!("{base}/health"))
        .header("host", format!("10.244.1.7:{port}"))
        .header("user-agent", "kube-probe/1.34")
        .send()
        .unwrap();
    let status = ready.status();
    let body: serde_json::Value = ready.json().unwrap();
    assert_eq!(status, 200, "the readiness probe: {body}");
    assert_eq!(body, serde_json::json!({"status": "ok"}));
    // Under a name it serves, the whole answer: this replica is the pod.
    let body: serde_json::Value = client
        .get(format!("{base}/health"))
        .header("host", "vmcp:8000")
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(body["replica"], pod, "{body}");

    assert!(manifest.contains("tcpSocket: {port: http}"));
    std::net::TcpStream::connect(format!("127.0.0.1:{port}")).expect("the liveness probe");

    // The names the Deployment allows reach the API with its token, and only with it; the pod's
    // address does not, even with the token.
    let allowed = env
        .iter()
        .find(|(n, _)| n == "VMCP_ALLOWED_HOSTS")
        .and_then(|(_, v)| v.clone())
        .unwrap();
    let api = |host: &str, token: Option<&str>| {
        let mut request = client.get(format!("{base}/api/vmcps")).header("host", host);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().unwrap().status()
    };
    let token = Some("the-deployment-token");
    for host in allowed.split(',') {
        assert_eq!(api(&format!("{host}:8000"), token), 200, "{host}");
        assert_eq!(api(&format!("{host}:8000"), None), 401, "{host}, no token");
    }
    assert_eq!(api(&format!("10.244.1.7:{port}"), token), 403);
    assert!(vmcp.terminate().success());
}
