//! The data dir is checked before anything else starts, so a wrong one is one clear line,
//! not an OS error after the networks have opened their ports.

use std::path::Path;

use anyhow::{Result, anyhow};

/// Creates `dir` if needed and proves that files can be written in it.
pub fn prepare(dir: &Path) -> Result<()> {
    let fix = "Give a directory you can write to with --data-dir, JUNCTION_DATA_DIR or \
               `data_dir` under [gateway] in the config";
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow!("cannot create the data dir {}: {e}. {fix}", dir.display()))?;
    let probe = dir.join(".junction-write-test");
    std::fs::write(&probe, b"")
        .map_err(|e| anyhow!("cannot write in the data dir {}: {e}. {fix}", dir.display()))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_dir_that_cannot_be_made_is_named_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        std::fs::write(&file, b"x").unwrap();
        let err = prepare(&file.join("data")).unwrap_err().to_string();
        assert!(
            err.contains(&file.join("data").display().to_string()),
            "{err}"
        );
        assert!(err.contains("--data-dir"), "{err}");
        prepare(&dir.path().join("new/data")).unwrap();
        assert!(dir.path().join("new/data").is_dir());
    }
}
