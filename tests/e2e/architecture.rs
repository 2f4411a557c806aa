//! The layering holds: the crates depend inward only (functions and cli -> api -> aws -> core,
//! from `cargo metadata`), and within each crate no module depends, through its imports, on a
//! module that depends back on it (no cycle, at the level of a crate's top-level modules and at
//! the level of the files of each folder).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::harness::repo_root;

/// Which of cooper's own crates each may depend on.
fn allowed(name: &str) -> Option<&'static [&'static str]> {
    Some(match name {
        "cooper-core" => &[],
        "cooper-aws" => &["cooper-core"],
        "cooper-api" => &["cooper-aws", "cooper-core"],
        n if n == "cooper-cli" || n.starts_with("cooper-") && is_function(n) => {
            &["cooper-api", "cooper-aws", "cooper-core"]
        }
        // The benchmark's floor: the SDK alone (and cooper's adapters' helpers at most).
        "cooper-bench" => &["cooper-aws", "cooper-core"],
        _ => return None,
    })
}

fn is_function(name: &str) -> bool {
    [
        "issue-credentials",
        "enroll-totp",
        "admin-targets",
        "audit-notify",
        "web-console",
        "saml-signin",
        "rotate-keys",
    ]
    .iter()
    .any(|f| name == format!("cooper-{f}"))
}

#[test]
fn crates_depend_inward_only() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(repo_root())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).unwrap();
    let members: BTreeSet<String> = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    for package in metadata["packages"].as_array().unwrap() {
        let name = package["name"].as_str().unwrap();
        let may = allowed(name).unwrap_or_else(|| panic!("{name}: which layer is it on?"));
        for dep in package["dependencies"].as_array().unwrap() {
            let dep_name = dep["name"].as_str().unwrap();
            // Dev-dependencies are the tests' (the e2e suite drives every layer).
            if dep["kind"].as_str() == Some("dev") || !members.contains(dep_name) {
                continue;
            }
            assert!(
                may.contains(&dep_name),
                "{name} depends on {dep_name}: only on {may:?} (functions and cli -> api -> aws -> core)"
            );
        }
    }
}

/// A crate's modules, by path (`admin::kernel`), with the file each is.
fn modules(src: &Path) -> BTreeMap<String, PathBuf> {
    fn walk(dir: &Path, prefix: &[String], out: &mut BTreeMap<String, PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                let mut inner = prefix.to_vec();
                inner.push(stem);
                walk(&path, &inner, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let mut name = prefix.to_vec();
                if !["mod", "lib", "main"].contains(&stem.as_str()) {
                    name.push(stem);
                }
                out.insert(name.join("::"), path);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(src, &[], &mut out);
    out
}

/// The code of a file without its tests (`#[cfg(test)] mod tests { ... }` at the end, by
/// convention) and without comments.
fn code_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => &text,
    };
    text.lines()
        .map(|l| l.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The modules a file refers to: `crate::a::b` and `super::c` paths, resolved to the longest
/// known module.
fn references(name: &str, path: &Path, known: &BTreeMap<String, PathBuf>) -> BTreeSet<String> {
    let code = code_of(path);
    let is_folder_root = path
        .file_stem()
        .is_some_and(|s| s == "mod" || s == "lib" || s == "main");
    let own: Vec<&str> = name.split("::").filter(|s| !s.is_empty()).collect();
    let parent: Vec<&str> = if is_folder_root {
        own.clone()
    } else {
        own[..own.len().saturating_sub(1)].to_vec()
    };
    let mut found = BTreeSet::new();
    let chars: Vec<char> = code.chars().collect();
    let words: String = chars
        .iter()
        .map(|c| {
            if c.is_alphanumeric() || *c == '_' || *c == ':' {
                *c
            } else {
                ' '
            }
        })
        .collect();
    for token in words.split_whitespace() {
        let segments: Vec<&str> = token.split("::").filter(|s| !s.is_empty()).collect();
        let absolute: Vec<&str> = match segments.first() {
            Some(&"crate") => segments[1..].to_vec(),
            Some(&"super") => {
                let up = parent[..parent
                    .len()
                    .saturating_sub(if is_folder_root { 1 } else { 0 })]
                    .to_vec();
                up.into_iter()
                    .chain(segments[1..].iter().copied())
                    .collect()
            }
            _ => continue,
        };
        for n in (1..=absolute.len()).rev() {
            let candidate = absolute[..n].join("::");
            if known.contains_key(&candidate) {
                if candidate != name {
                    found.insert(candidate);
                }
                break;
            }
        }
    }
    found
}

fn cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == node) {
            return Some(path[i..].to_vec());
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, edges, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for node in edges.keys() {
        if let Some(c) = visit(node, edges, &mut Vec::new(), &mut done) {
            return Some(c);
        }
    }
    None
}

#[test]
fn no_crate_has_a_cycle_among_its_modules() {
    let crates = ["core", "aws", "api", "cli"]
        .iter()
        .map(|c| repo_root().join("crates").join(c).join("src"));
    for src in crates {
        let known = modules(&src);
        // Between top-level modules (a folder is one), and between the files of each folder;
        // a folder's root declaring and re-exporting its own files is its structure, not a
        // dependency.
        let mut top: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut within: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (name, path) in &known {
            let head = name.split("::").next().unwrap_or_default().to_owned();
            for to in references(name, path, &known) {
                let to_head = to.split("::").next().unwrap_or_default().to_owned();
                if head.is_empty() || to_head.is_empty() {
                    continue;
                }
                if head != to_head {
                    top.entry(head.clone()).or_default().insert(to_head);
                } else if !to.starts_with(&format!("{name}::")) && name.contains("::") {
                    within.entry(name.clone()).or_default().insert(to);
                }
            }
        }
        if let Some(c) = cycle(&top) {
            panic!(
                "{}: the modules {} depend on each other in a circle",
                src.display(),
                c.join(" -> ")
            );
        }
        if let Some(c) = cycle(&within) {
            panic!(
                "{}: the files {} depend on each other in a circle",
                src.display(),
                c.join(" -> ")
            );
        }
    }
}

/// Every file, test and symbol the README's invariants table names exists: a rename cannot leave
/// the table pointing at nothing.
#[test]
fn the_readme_names_code_and_tests_that_exist() {
    let root = repo_root();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let table = readme
        .split("## Security invariants")
        .nth(1)
        .expect("the README has its invariants section");
    let mut sources = String::new();
    for crate_dir in std::fs::read_dir(root.join("crates")).unwrap() {
        let dir = crate_dir.unwrap().path();
        for file in rust_files(&dir) {
            sources.push_str(&std::fs::read_to_string(file).unwrap());
        }
        if let Ok(manifest) = std::fs::read_to_string(dir.join("Cargo.toml")) {
            sources.push_str(&manifest);
        }
    }
    sources.push_str(&std::fs::read_to_string(root.join("template.yaml")).unwrap());
    let mut named = 0;
    let mut missing = Vec::new();
    for row in table
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| invariant"))
    {
        // The invariant's own words are free text; the other columns name things.
        for cell in row.split(" | ").skip(1) {
            for (i, token) in cell.split('`').enumerate() {
                if i % 2 == 0 || token.is_empty() {
                    continue;
                }
                named += 1;
                if !names_something(&root, &sources, token) {
                    missing.push(token.to_owned());
                }
            }
        }
    }
    assert!(
        named > 50,
        "only {named} names found: is the table still there?"
    );
    assert!(
        missing.is_empty(),
        "the README names what does not exist: {missing:?}"
    );
}

fn names_something(root: &Path, sources: &str, token: &str) -> bool {
    // A path in the repository.
    if token.contains('/') || token.ends_with(".rs") || token.ends_with(".toml") {
        return root.join(token).exists();
    }
    // A test: `module::name`, `module::*`, `module::prefix…`, or `use_cases::module::name`.
    let (dir, rest) = match token.strip_prefix("use_cases::") {
        Some(rest) => (root.join("crates/core/tests/use_cases"), rest),
        None => (root.join("tests/e2e"), token),
    };
    if let Some((module, test)) = rest.split_once("::") {
        let file = dir.join(format!("{module}.rs"));
        if module.chars().all(|c| c.is_ascii_lowercase() || c == '_') && file.exists() {
            let text = std::fs::read_to_string(file).unwrap();
            return match test {
                "*" => text.contains("#[test]") || text.contains("#[tokio::test"),
                t => match t.strip_suffix('…') {
                    Some(prefix) => text.contains(&format!("fn {prefix}")),
                    None => text.contains(&format!("fn {t}(")),
                },
            };
        }
    }
    // A symbol (`Type::item`, `CONST`, a crate, an IAM condition key): its last part appears in
    // the sources.
    let last = token.rsplit(['.', ':']).next().unwrap_or(token);
    !last.is_empty() && sources.contains(last)
}

/// Every `.rs` file under `dir` (crates nest their functions one level down).
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() && path.file_name().is_some_and(|n| n != "target") {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}
