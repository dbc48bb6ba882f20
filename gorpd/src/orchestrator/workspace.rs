//! Workspace directories: resolving a session's workspace under the
//! workspace root (never outside it) and preparing it from a template.

use super::{OrchestratorError, OrchestratorResult};
use std::path::{Component, Path, PathBuf};

/// Resolves `requested` (relative, defaulting to the session name) under `root`.
/// Refuses absolute paths, `..`, and anything that is not a plain relative path.
pub(crate) fn resolve(root: &Path, requested: Option<&str>, session: &str) -> OrchestratorResult<PathBuf> {
    let requested = requested.filter(|r| !r.trim().is_empty()).unwrap_or(session);
    let relative = Path::new(requested);
    let plain = relative.components().all(|c| matches!(c, Component::Normal(_)));
    if !plain || relative.is_absolute() || requested.contains('\0') || relative.components().next().is_none() {
        return Err(OrchestratorError::Invalid(format!(
            "workspace \"{requested}\" must be a relative path inside the workspace root (no \".\" or \"..\", no leading \"/\")"
        )));
    }
    Ok(root.join(relative))
}

/// Creates the workspace (copying `template` into it when it is new) and
/// checks that, with symlinks resolved, it is still inside `root`.
/// Creates `dir` and missing parents readable only by gorpd's user, whatever
/// the umask (workspaces hold the agents' work); existing ones are left alone.
fn create_private_dirs(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

pub(crate) fn prepare(root: &Path, dir: &Path, template: Option<&Path>) -> OrchestratorResult<PathBuf> {
    let io_error = |path: &Path| {
        let path = path.display().to_string();
        move |source| OrchestratorError::Workspace { path, source }
    };
    create_private_dirs(root).map_err(io_error(root))?;
    let canonical_root = root.canonicalize().map_err(io_error(root))?;
    // Check the deepest existing ancestor before creating anything, so a
    // symlink out of the root never gets directories made behind it.
    let existing = dir.ancestors().find(|a| a.exists()).unwrap_or(root);
    check_inside(&canonical_root, &existing.canonicalize().map_err(io_error(existing))?, dir)?;
    let is_new = !dir.exists();
    create_private_dirs(dir).map_err(io_error(dir))?;
    let canonical = dir.canonicalize().map_err(io_error(dir))?;
    check_inside(&canonical_root, &canonical, dir)?;
    if let (true, Some(template)) = (is_new, template) {
        copy_tree(template, &canonical).map_err(io_error(template))?;
    }
    Ok(canonical)
}

fn check_inside(root: &Path, resolved: &Path, requested: &Path) -> OrchestratorResult<()> {
    if resolved.starts_with(root) {
        return Ok(());
    }
    Err(OrchestratorError::Invalid(format!(
        "workspace {} resolves outside the workspace root {}",
        requested.display(),
        root.display()
    )))
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            std::fs::create_dir_all(&target)?;
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_defaults_to_the_session_name() {
        assert_eq!(resolve(Path::new("/r"), None, "research").unwrap(), Path::new("/r/research"));
        assert_eq!(resolve(Path::new("/r"), Some("a/b"), "x").unwrap(), Path::new("/r/a/b"));
    }

    #[test]
    fn escaping_paths_are_refused() {
        for bad in ["/etc", "..", "a/../../b", "../x", ".", "./a"] {
            assert!(resolve(Path::new("/r"), Some(bad), "x").is_err(), "{bad}");
        }
    }

    #[test]
    fn a_symlink_out_of_the_root_is_refused_and_templates_are_copied() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("link")).unwrap();
        let escaped = resolve(root.path(), Some("link/sub"), "x").unwrap();
        assert!(prepare(root.path(), &escaped, None).is_err());
        assert!(!outside.path().join("sub").exists(), "nothing was created outside the root");

        let template = tempfile::tempdir().unwrap();
        std::fs::create_dir(template.path().join("docs")).unwrap();
        std::fs::write(template.path().join("docs/AGENTS.md"), "be nice").unwrap();
        let dir = prepare(root.path(), &root.path().join("fresh"), Some(template.path())).unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("docs/AGENTS.md")).unwrap(), "be nice");
    }
}
