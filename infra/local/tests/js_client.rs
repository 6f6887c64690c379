//! The TypeScript package's own tests (`node --test clients/js/test/`): its ordering on a
//! simulated clock, the shared conformance scenario, `npm pack` into a fresh project that
//! type-checks, the drift of its generated declarations and build, and its end-to-end
//! tests, which start this binary (`REALTIME_LOCAL_BIN`) on ports of their own.

use std::path::Path;
use std::process::Command;

#[test]
fn the_typescript_package_passes_its_tests_against_the_local_stack() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let pkg = root.join("clients/js");
    assert!(
        pkg.join("node_modules/typescript").is_dir(),
        "clients/js has no node_modules: run `bash infra/setup.sh` (it runs `npm ci` there)"
    );
    let out = Command::new("node")
        .args(["--test", "--test-concurrency=1", "test/"])
        .current_dir(&pkg)
        .env("REALTIME_LOCAL_BIN", env!("CARGO_BIN_EXE_realtime-local"))
        .env("RUST_LOG", "warn")
        .output()
        .unwrap_or_else(|e| panic!("could not run node (it is needed for clients/js): {e}"));
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "node --test failed ({})\n{stdout}\n{stderr}", out.status);
    // Something ran, and nothing failed or was skipped (the runner's summary lines).
    let count = |key: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("# {key} ")))
            .and_then(|n| n.trim().parse::<u32>().ok())
    };
    assert!(count("pass").is_some_and(|n| n >= 40), "fewer JS tests than expected:\n{stdout}");
    assert_eq!(
        (count("fail"), count("skipped"), count("cancelled")),
        (Some(0), Some(0), Some(0)),
        "{stdout}"
    );
    println!("{stdout}");
}
