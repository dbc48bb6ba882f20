//! The client-side file system an ACP agent may use: reads and writes of
//! text files, confined to the session's workspace.

use std::path::{Component, Path, PathBuf};

/// Resolves `requested` (absolute, or relative to the workspace) to a path
/// inside `workspace`, refusing anything that leaves it, also through symlinks.
pub(super) fn confine(workspace: &Path, requested: &Path) -> Result<PathBuf, String> {
    let root = workspace.canonicalize().map_err(|e| format!("workspace {}: {e}", workspace.display()))?;
    let joined = if requested.is_absolute() { requested.to_path_buf() } else { root.join(requested) };
    let mut normal = PathBuf::new();
    for component in joined.components() {
        match component {
            Component::ParentDir => {
                normal.pop();
            }
            Component::CurDir => {}
            other => normal.push(other),
        }
    }
    // The deepest existing ancestor decides where a symlink really leads.
    let existing = normal.ancestors().find(|a| a.exists()).unwrap_or(&root);
    let resolved = existing.canonicalize().map_err(|e| format!("{}: {e}", existing.display()))?;
    if !normal.starts_with(&root) || !resolved.starts_with(&root) {
        return Err(format!("{} is outside the session's workspace", requested.display()));
    }
    Ok(normal)
}

/// Reads a text file (optionally from 1-based `line`, at most `limit` lines).
pub(super) fn read_text(
    workspace: &Path,
    path: &Path,
    line: Option<u32>,
    limit: Option<u32>,
) -> Result<String, String> {
    let path = confine(workspace, path)?;
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    if line.is_none() && limit.is_none() {
        return Ok(text);
    }
    let skip = line.map_or(0, |l| l.saturating_sub(1) as usize);
    let take = limit.map_or(usize::MAX, |l| l as usize);
    Ok(text.lines().skip(skip).take(take).collect::<Vec<_>>().join("\n"))
}

/// Writes a text file, creating missing directories inside the workspace.
pub(super) fn write_text(workspace: &Path, path: &Path, content: &str) -> Result<(), String> {
    let path = confine(workspace, path)?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    std::fs::write(&path, content).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_workspace() {
        let workspace = tempfile::tempdir().unwrap();
        let root = workspace.path().canonicalize().unwrap();
        write_text(&root, Path::new("notes/a.txt"), "one\ntwo\nthree").unwrap();
        assert_eq!(read_text(&root, Path::new("notes/a.txt"), None, None).unwrap(), "one\ntwo\nthree");
        assert_eq!(read_text(&root, &root.join("notes/a.txt"), Some(2), Some(1)).unwrap(), "two");
        for escape in ["../x", "/etc/passwd", "notes/../../x"] {
            assert!(read_text(&root, Path::new(escape), None, None).is_err(), "{escape}");
        }
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), root.join("link")).unwrap();
        assert!(write_text(&root, Path::new("link/evil.txt"), "x").is_err());
        assert!(!outside.path().join("evil.txt").exists());
    }
}
