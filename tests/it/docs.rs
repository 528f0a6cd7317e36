//! The README stays true: every environment variable in the registry is documented.

#[test]
fn readme_documents_every_environment_variable() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for (name, _, _) in labup::testing::ENV_VARS {
        assert!(readme.contains(&format!("`{name}`")), "README.md does not document `{name}`");
    }
}

#[test]
fn readme_starts_with_the_two_commands() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let head: String = readme.lines().take(25).collect::<Vec<_>>().join("\n");
    assert!(head.contains("cargo run --release -- up"), "{head}");
    assert!(head.lines().any(|l| l.trim() == "scripts/test"), "{head}");
    // CI runs the README's test command, and that command ends in the test runner.
    let ci = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/run")).unwrap();
    assert!(ci.lines().any(|l| l.trim() == "exec scripts/test"), "{ci}");
    let script = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/test")).unwrap();
    assert!(script.contains("\ncargo nextest run \"$@\"\n"), "{script}");
}
