//! The README stays true: every environment variable in the registry is documented.

#[test]
fn readme_documents_every_environment_variable() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for (name, _, _) in labup::envvars::ALL {
        assert!(readme.contains(&format!("`{name}`")), "README.md does not document `{name}`");
    }
}

#[test]
fn readme_starts_with_the_two_commands() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let head: String = readme.lines().take(25).collect::<Vec<_>>().join("\n");
    assert!(head.contains("cargo run --release -- up"), "{head}");
    assert!(head.contains("cargo nextest run"), "{head}");
}
