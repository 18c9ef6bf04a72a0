//! A real software TPM (Debian's swtpm) per test: its own state directory and loopback
//! ports, stopped and deleted on drop. Without swtpm the TPM tests are reported as not
//! run, with the reason; with `PIN_RECOVERY_REQUIRE_TPM=1` (as in CI) that is a failure.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Why the TPM tests cannot run here, if they cannot.
pub fn not_run() -> Option<String> {
    let reason = match Command::new("swtpm").arg("--version").output() {
        Ok(o) if o.status.success() => return None,
        Ok(_) => "not run: `swtpm --version` failed".to_owned(),
        Err(e) => format!("not run: swtpm is not installed ({e}); apt-get install swtpm"),
    };
    if std::env::var("PIN_RECOVERY_REQUIRE_TPM").is_ok_and(|v| v == "1") {
        panic!("{reason}, and PIN_RECOVERY_REQUIRE_TPM=1");
    }
    Some(reason)
}

/// Why the tests that drive the TPM with tpm2-tools cannot run, if they cannot.
pub fn tools_not_run() -> Option<String> {
    match Command::new("tpm2_getcap").arg("-v").output() {
        Ok(o) if o.status.success() => None,
        _ if std::env::var("PIN_RECOVERY_REQUIRE_TPM").is_ok_and(|v| v == "1") => {
            panic!("tpm2-tools are not installed, and PIN_RECOVERY_REQUIRE_TPM=1")
        }
        _ => Some("not run: tpm2-tools are not installed; apt-get install tpm2-tools".into()),
    }
}

pub struct SwTpm {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

fn free_port_pair() -> u16 {
    loop {
        let a = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = a.local_addr().unwrap().port();
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
}

impl SwTpm {
    /// A fresh TPM, manufactured now, with swtpm's default lockout parameters (3 tries,
    /// 1000 s per failure forgotten, 1000 s lockout recovery).
    pub fn start() -> SwTpm {
        let dir = tempfile::tempdir().unwrap();
        let mut tpm = SwTpm {
            dir,
            port: 0,
            child: None,
        };
        tpm.launch();
        tpm
    }

    fn launch(&mut self) {
        for _ in 0..20 {
            let port = free_port_pair();
            let state = format!("dir={}", self.dir.path().display());
            let server = format!("type=tcp,port={port},bindaddr=127.0.0.1");
            let ctrl = format!("type=tcp,port={},bindaddr=127.0.0.1", port + 1);
            let log = format!(
                "file={},level=1",
                self.dir.path().join("swtpm.log").display()
            );
            let mut child = Command::new("swtpm")
                .args([
                    "socket",
                    "--tpm2",
                    "--tpmstate",
                    &state,
                    "--server",
                    &server,
                ])
                .args(["--ctrl", &ctrl, "--flags", "not-need-init,startup-clear"])
                .args(["--log", &log])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("swtpm starts");
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if child.try_wait().unwrap().is_some() {
                    break; // a port was taken meanwhile: try another pair
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    self.port = port;
                    self.child = Some(child);
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("swtpm did not start");
    }

    /// The TCTI configuration string for tpm2-tss.
    pub fn tcti(&self) -> String {
        format!("swtpm:host=127.0.0.1,port={}", self.port)
    }

    /// Runs a tpm2-tools command against this TPM; its success and its output.
    pub fn tool(&self, name: &str, args: &[&str]) -> (bool, String) {
        let out = Command::new(name)
            .args(args)
            .env("TPM2TOOLS_TCTI", self.tcti())
            .output()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    /// Sets the lockout parameters (while the lockout authorization is still empty).
    pub fn set_lockout(&self, max_tries: u32, recovery: u32, lockout_recovery: u32) {
        let (ok, out) = self.tool(
            "tpm2_dictionarylockout",
            &[
                "-s",
                "-n",
                &max_tries.to_string(),
                "-t",
                &recovery.to_string(),
                "-l",
                &lockout_recovery.to_string(),
            ],
        );
        assert!(ok, "tpm2_dictionarylockout: {out}");
    }

    /// Stops the TPM process (orderly: a TPM2_Shutdown first, so that no failure is
    /// added on the next start), keeping its state.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = self.tool("tpm2_shutdown", &[]);
            let _ = Command::new("swtpm_ioctl")
                .args(["--tcp", &format!("127.0.0.1:{}", self.port + 1), "-s"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on its saved state (possibly on other ports).
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// Kills the TPM process without warning (a pulled plug).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for SwTpm {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
