//! `labup export kubernetes`: the real binary; the manifests checked against Kubernetes' official
//! schemas with `kubernetes-validate --strict` (PyPI, installed by
//! `.ci/setup.d/40-kubernetes-validate.sh`: `engine_`), for the newest (1.37) and the oldest
//! (1.25) version claimed. There is no cluster here to apply them to.

use std::path::Path;
use std::process::Command;

use crate::support::Project;

const VALIDATOR: &str = "/opt/labup-ci/kubernetes-validate/bin/kubernetes-validate";

const CONFIG: &str = r#"
[project]
name = "Demo Lab"

[gpu]
cuda = "on"
count = 2

[services.jupyter]
kind = "jupyter"

[services.app]
command = ["python", "server.py"]
port = 5001
ready = { http = "/health" }

[services.db]
command = ["redis-server", "--port", "6379"]
port = 6379
ready = { tcp = true }

[services.worker]
command = ["python", "worker.py"]
ready = { log = "started" }
"#;

/// The `kind`s and `apiVersion`s in a multi-document YAML file, read by PyYAML (the validator's
/// own venv has it): the validator only warns on an unknown kind, so they are checked here.
fn kinds(path: &Path) -> Vec<(String, String)> {
    let python = Path::new(VALIDATOR).with_file_name("python");
    let script =
        "import sys, yaml\nfor d in yaml.safe_load_all(open(sys.argv[1])):\n    print(d['apiVersion'], d['kind'])";
    let out = Command::new(python).args(["-c", script]).arg(path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(' ').map(|(a, k)| (a.to_string(), k.to_string())))
        .collect()
}

fn validate(files: &[&Path], version: &str) {
    let out = Command::new(VALIDATOR)
        .args(["--strict", "-k", version])
        .args(files)
        .output()
        .expect("kubernetes-validate (.ci/setup.d/40-kubernetes-validate.sh)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "kubernetes-validate {version}:\n{text}");
    // It exits 0 on a file with no object in it: every object must have passed.
    let minor = version.rsplit_once('.').map_or(version, |(v, _)| v);
    assert_eq!(text.matches(&format!("against version {minor}")).count(), 4, "{text}");
    assert!(!text.contains("ERROR") && !text.contains("WARN"), "{text}");
}

#[test]
fn engine_kubernetes_manifests_pass_the_official_schemas_strictly() {
    let p = Project::new();
    p.with_jupyter().file("labup.toml", CONFIG);
    let out =
        p.labup(&["export", "kubernetes", "--image", "registry.example.com/team/demo:1.0", "--namespace", "lab"]).ok();
    let all = p.path("all.yaml");
    std::fs::write(&all, &out.stdout).unwrap();
    let expected: Vec<(String, String)> =
        [("apps/v1", "Deployment"), ("v1", "Service"), ("v1", "PersistentVolumeClaim"), ("v1", "Secret")]
            .map(|(a, k)| (a.to_string(), k.to_string()))
            .to_vec();
    assert_eq!(kinds(&all), expected);
    for version in ["1.37.0", "1.25.0"] {
        validate(&[&all], version);
    }
    // The same objects as one file each in `-o DIR`.
    let dir = p.path("k8s");
    p.labup(&["export", "kubernetes", "--image", "registry.example.com/team/demo:1.0", "-o", "k8s"]).ok();
    let mut names: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(names, ["deployment.yaml", "pvc.yaml", "secret.yaml", "service.yaml"]);
    let files: Vec<std::path::PathBuf> = names.iter().map(|n| dir.join(n)).collect();
    let refs: Vec<&Path> = files.iter().map(|f| f.as_path()).collect();
    validate(&refs, "1.37.0");
    // A misspelled field is what `--strict` catches: the check above can fail.
    let broken = p.path("broken.yaml");
    std::fs::write(&broken, out.stdout.replace("readinessProbe", "readinesProbe")).unwrap();
    let status = Command::new(VALIDATOR).args(["--strict", "-k", "1.37.0"]).arg(&broken).output().unwrap();
    assert!(!status.status.success(), "the validator accepted a misspelled field");
}

#[test]
fn export_kubernetes_puts_the_token_in_the_secret_only() {
    let p = Project::new();
    p.with_jupyter().file("labup.toml", CONFIG);
    let before = p.listing();
    let out = p.labup(&["export", "kubernetes", "--image", "demo:1"]).ok();
    assert_eq!(p.listing(), before, "exporting to stdout wrote into the project");
    let docs: Vec<&str> = out.stdout.split("\n---\n").collect();
    assert_eq!(docs.len(), 4, "{}", out.stdout);
    let secret = docs.iter().find(|d| d.contains("kind: \"Secret\"")).unwrap();
    let token = secret.lines().find_map(|l| l.trim().strip_prefix("token: ")).unwrap().trim_matches('"').to_string();
    assert_eq!(token.len(), 48, "{secret}");
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(out.stdout.matches(&token).count(), 1, "the token outside the Secret");
    assert!(!out.stderr.contains(&token));
    let deployment = docs.iter().find(|d| d.contains("kind: \"Deployment\"")).unwrap();
    assert!(deployment.contains("name: \"LABUP_JUPYTER_TOKEN\"") && deployment.contains("secretKeyRef"));
    // The workstation's own token is not the exported one (and is not made by exporting).
    assert!(!p.path(".labup").exists());
    // A second export makes a new token.
    let again = p.labup(&["export", "kubernetes", "--image", "demo:1"]).ok();
    assert!(!again.stdout.contains(&token));
}

#[test]
fn export_kubernetes_bad_input_exits_2_and_writes_nothing() {
    let p = Project::new();
    p.with_jupyter().file("labup.toml", CONFIG);
    p.file("taken/notes.txt", "mine");
    p.file("a-file", "x");
    let before = p.listing();
    let cases: &[(&[&str], &str)] = &[
        (&["export", "nomad"], "nomad"),
        (&["export", "kubernetes", "--image", "Team/Demo"], "not a valid image reference"),
        (&["export", "kubernetes", "--image", "demo:1", "--namespace", "Lab_1"], "not a valid namespace"),
        (&["export", "kubernetes", "--image", "demo:1", "-o", "a-file"], "is not a folder"),
        (&["export", "kubernetes", "--image", "demo:1", "-o", "taken"], "holds notes.txt"),
        (&["export", "kubernetes", "--image", "demo:1", "--expose", "worker"], "the service has no port"),
    ];
    for (args, message) in cases {
        let out = p.labup(args).code(2);
        assert!(out.stderr.contains(message), "{args:?}: {}", out.stderr);
        assert!(out.stdout.is_empty(), "{args:?} printed: {}", out.stdout);
        assert_eq!(p.listing(), before, "{args:?} wrote something");
    }
    p.file("labup.toml", &CONFIG.replace("port = 5001", "port = \"auto\""));
    let before = p.listing();
    p.labup(&["export", "kubernetes", "--image", "demo:1", "-o", "out"])
        .code(2)
        .stderr_has("`app` has `port = \"auto\"`")
        .stderr_has("hint: give `[services.app] port` a number");
    assert_eq!(p.listing(), before);
}
