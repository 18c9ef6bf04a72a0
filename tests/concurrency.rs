//! Audit finding 10: two processes using one container. Each operation holds an advisory
//! lock on the container across its read-modify-write and writes a uniquely named
//! temporary file, so two processes hammering one container never leave a mixed file
//! and never lose a failed-PIN count.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use common::world::{test_policy, T0};
use pin_recovery::client::{ClientError, Container, ContainerPolicy, FileStore, Pin};
use pin_recovery::{Binding, ManualClock};

const RIGHT: [&str; 2] = ["111111", "222222"];
const WRONG: &str = "999999";

fn policy() -> ContainerPolicy {
    let mut p = test_policy(false);
    p.pin.history = 0;
    p.attempt_limit = 1_000_000;
    p
}

fn container(dir: &Path) -> Container<FileStore> {
    Container::with_clock(
        FileStore::new(dir.join("container")),
        policy(),
        None,
        Arc::new(ManualClock::new(T0)),
    )
}

/// The child half: `wrong` tries the wrong PIN `n` times; `change` changes the PIN back
/// and forth `n` times. Any error other than the expected one fails the child.
#[test]
#[ignore = "run by the tests below as a child process"]
fn hammer_child() {
    let Ok(spec) = std::env::var("PIN_RECOVERY_HAMMER") else {
        return;
    };
    let mut parts = spec.split(',');
    let (dir, role, n) = (
        PathBuf::from(parts.next().unwrap()),
        parts.next().unwrap().to_owned(),
        parts.next().unwrap().parse::<usize>().unwrap(),
    );
    let c = container(&dir);
    for i in 0..n {
        match role.as_str() {
            "wrong" => match c.sign_in(&Pin::new(WRONG), b"c", None) {
                Err(ClientError::WrongPin { .. }) => {}
                other => panic!("attempt {i}: {other:?}"),
            },
            "change" => {
                // The other process may have changed it: try both.
                let ok = RIGHT.iter().enumerate().any(|(j, old)| {
                    match c.change_pin(&Pin::new(*old), &Pin::new(RIGHT[1 - j])) {
                        Ok(()) => true,
                        Err(ClientError::WrongPin { .. }) => false,
                        Err(e) => panic!("change {i}: {e:?}"),
                    }
                });
                assert!(ok, "change {i}: neither PIN opened the container");
            }
            other => panic!("unknown role {other}"),
        }
    }
}

/// A container enrolled in `dir` with the first right PIN.
fn enrolled(dir: &Path) -> Container<FileStore> {
    let c = container(dir);
    let b = Binding::new("t", "u", "d").unwrap();
    c.enrol(&b, &Pin::new(RIGHT[0]), None).unwrap();
    c
}

fn spawn(dir: &Path, role: &str, n: usize) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "hammer_child", "--ignored", "--nocapture"])
        .env(
            "PIN_RECOVERY_HAMMER",
            format!("{},{role},{n}", dir.display()),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn finish(child: Child, what: &str) {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn finding_10_two_processes_never_lose_a_failed_pin_count() {
    let dir = tempfile::tempdir().unwrap();
    let c = enrolled(dir.path());
    let n = 150;
    let a = spawn(dir.path(), "wrong", n);
    let b = spawn(dir.path(), "wrong", n);
    finish(a, "first process");
    finish(b, "second process");
    assert_eq!(
        c.status().unwrap().failed_attempts,
        u32::try_from(2 * n).unwrap(),
        "every wrong PIN of both processes is counted"
    );
    println!("two processes, {n} wrong PINs each: {} counted", 2 * n);
}

#[test]
fn finding_10_two_processes_never_leave_a_mixed_file() {
    let dir = tempfile::tempdir().unwrap();
    let c = enrolled(dir.path());
    let n = 100;
    let a = spawn(dir.path(), "change", n);
    let b = spawn(dir.path(), "wrong", 3 * n);
    finish(a, "PIN-changing process");
    finish(b, "wrong-PIN process");
    // It opens with the PIN the last change set, and no temporary file is left behind.
    let pin = RIGHT[n % 2];
    c.sign_in(&Pin::new(pin), b"c", None).unwrap();
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}
