//! `ci/repeat.sh` against a fake `azrw` (`AZRW=`): identical verdicts pass, one case that changes between runs
//! fails naming it, and a run under load (`AZRW_REPEAT_LOAD_LAST=1`) is compared like the others.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

/// A fake `azrw run` that prints the console table for two cases; `retry/steady` is known-vulnerable every time, `tokens/flaky` fails on run `fail_on` (counted
/// in a file next to the script), `0` for never.
fn fake_azrw(dir: &Path, fail_on: u32) -> std::path::PathBuf {
    let path = dir.join("azrw");
    let script = format!(
        "#!/bin/sh\nn=$(cat {dir}/count 2>/dev/null || echo 0); n=$((n + 1)); echo $n > {dir}/count\n\
         echo 'CASE  EXPECTED  OBSERVED  RESULT  EVIDENCE'\n\
         echo 'retry/steady [prometheus@2.53.4/process]  delivered  delivered  known-vulnerable  CVE'\n\
         if [ $n -eq {fail_on} ]; then\n\
         echo 'tokens/flaky [prometheus@3.5.5/process]  delivered  delivered  FAIL  tokens.refresh'\n\
         echo '1 passed, 1 failed'; exit 1\nfi\n\
         echo 'tokens/flaky [prometheus@3.5.5/process]  delivered  delivered  pass  -'\n\
         echo '2 passed, 0 failed'\n",
        dir = dir.display()
    );
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn repeat(azrw: &Path, n: &str, env: &[(&str, &str)]) -> (bool, String) {
    let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/ci/repeat.sh"))
        .args([n, "scenarios/retry", "scenarios/tokens"])
        .env("AZRW", azrw)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn identical_verdicts_pass_and_a_changed_one_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, stdout) = repeat(&fake_azrw(dir.path(), 0), "3", &[]);
    assert!(ok, "{stdout}");
    assert!(
        stdout.contains(
            "REPEAT OK: identical verdicts in 3 runs (2 cases: 1 known-vulnerable, 1 pass, 0 FAIL each time)"
        ),
        "{stdout}"
    );

    let dir = tempfile::tempdir().unwrap();
    let (ok, stdout) = repeat(&fake_azrw(dir.path(), 2), "3", &[]);
    assert!(!ok, "{stdout}");
    assert!(stdout.contains("run 2 differs from run 1"), "{stdout}");
    assert!(stdout.contains("+tokens/flaky [prometheus@3.5.5/process]\tFAIL\tdelivered"), "{stdout}");
    assert!(stdout.contains("REPEAT FAILED"), "{stdout}");
}

#[test]
fn the_loaded_last_run_is_compared_like_the_others() {
    if Command::new("stress-ng").arg("--version").output().is_err() {
        // ci/setup.sh installs it; without it the script refuses the option, which is checked instead.
        let dir = tempfile::tempdir().unwrap();
        let (ok, stdout) = repeat(&fake_azrw(dir.path(), 0), "2", &[("AZRW_REPEAT_LOAD_LAST", "1")]);
        assert!(!ok, "{stdout}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (ok, stdout) = repeat(&fake_azrw(dir.path(), 2), "2", &[("AZRW_REPEAT_LOAD_LAST", "1")]);
    assert!(!ok, "a verdict that changed under load fails: {stdout}");
    assert!(stdout.contains("run 2/2: 1 pass, 1 FAIL"), "{stdout}");
    assert!(stdout.contains("under load (stress-ng --cpu 0"), "{stdout}");
    assert!(stdout.contains("run 2 differs from run 1"), "{stdout}");
}
