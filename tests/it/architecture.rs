//! The layering rules of DESIGN.md, checked on the source: dependencies point one way
//! (web → services → models and connectors), so nothing below the web layer may name it.

use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn source_files() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    sources(&root.join("src"), &mut files);
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("a source file is readable");
            let name = p
                .strip_prefix(root)
                .expect("under the project")
                .to_string_lossy()
                .replace('\\', "/");
            (name, text)
        })
        .collect()
}

/// Lines that are code (comments may name the web layer to explain it).
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .filter(|(_, l)| !l.trim_start().starts_with("//"))
}

#[test]
fn only_the_web_layer_and_start_up_name_the_web_layer_or_start_up() {
    let mut offences = Vec::new();
    for (name, text) in source_files() {
        let allowed =
            name.starts_with("src/web/") || name == "src/main.rs" || name == "src/startup.rs";
        if allowed {
            continue;
        }
        for (line, code) in code_lines(&text) {
            if [
                "crate::web",
                "crate::startup",
                "roster::web",
                "roster::startup",
            ]
            .iter()
            .any(|p| code.contains(p))
            {
                offences.push(format!("{name}:{line}: {}", code.trim()));
            }
        }
    }
    assert!(
        offences.is_empty(),
        "below the web layer, these lines name `web` or `startup` (move what they need down, \
         into services, `state`, `audit` or `validation`):\n{}",
        offences.join("\n")
    );
}
/// Handlers extract, call one service and render: the database is the services' business.
#[test]
fn the_web_layer_leaves_the_database_to_the_services() {
    let mut offences = Vec::new();
    for (name, text) in source_files() {
        if !name.starts_with("src/web/") {
            continue;
        }
        for (line, code) in code_lines(&text) {
            if [
                "db.run(",
                "db.write(",
                "db.get(",
                "db.transaction(",
                "state.db",
            ]
            .iter()
            .any(|p| code.contains(p))
            {
                offences.push(format!("{name}:{line}: {}", code.trim()));
            }
        }
    }
    assert!(
        offences.is_empty(),
        "the web layer touches the database here (move it into a service):\n{}",
        offences.join("\n")
    );
}

#[test]
fn no_source_file_is_longer_than_about_five_hundred_lines() {
    let long: Vec<String> = source_files()
        .into_iter()
        .filter(|(name, _)| name != "src/db/schema.rs")
        .filter_map(|(name, text)| {
            let n = text.lines().count();
            (n > 520).then(|| format!("{name}: {n} lines"))
        })
        .collect();
    assert!(
        long.is_empty(),
        "split these files by responsibility:\n{}",
        long.join("\n")
    );
}
