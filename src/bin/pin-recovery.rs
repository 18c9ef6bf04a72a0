//! `pin-recovery`: generate service keys, seal, open and inspect envelopes.
//!
//! Secrets (private keys, recovery secrets) are read from files or standard input and
//! written to files or standard output; never taken from the command line, where other
//! users could read them in the process list.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use pin_recovery::{Binding, Envelope, RecoverySecret, ServicePrivateKey, ServicePublicKey, Suite};
use zeroize::Zeroizing;

/// Seal recovery secrets to a service key and open them there (pin-recovery envelopes).
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a service key pair; writes the private key as PKCS#8 PEM.
    Keygen {
        /// The suite the key is for: hpke-p256 (default), rsa-oaep or hpke-xwing (post-quantum hybrid).
        #[arg(long, default_value = "hpke-p256")]
        suite: Suite,
        /// RSA modulus size: 2048, 3072 or 4096 (rsa-oaep only).
        #[arg(long, default_value_t = 3072)]
        rsa_bits: usize,
        /// Where to write the private key (created with mode 0600; `-` for stdout).
        #[arg(long)]
        out: PathBuf,
        /// Replace the output file if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Print the public key (SubjectPublicKeyInfo) of a private key, and its key id.
    Pubkey {
        /// The PKCS#8 private key, PEM or DER (`-` for stdin).
        #[arg(long)]
        key: PathBuf,
        /// Write DER instead of PEM.
        #[arg(long)]
        der: bool,
        /// Where to write it (default stdout).
        #[arg(long, default_value = "-")]
        out: PathBuf,
    },
    /// Seal a 256-bit recovery secret to a service public key.
    Seal {
        /// The service public key, SubjectPublicKeyInfo PEM or DER.
        #[arg(long)]
        pubkey: PathBuf,
        #[command(flatten)]
        binding: BindingArgs,
        /// The secret: 64 hex digits or 32 raw bytes (`-` for stdin).
        #[arg(long)]
        secret: PathBuf,
        /// Write the binary form instead of the text form.
        #[arg(long)]
        binary: bool,
        /// Where to write the envelope (default stdout).
        #[arg(long, default_value = "-")]
        out: PathBuf,
    },
    /// Open an envelope with the service private key; prints the secret in hex.
    Open {
        /// The service private key, PKCS#8 PEM or DER.
        #[arg(long)]
        key: PathBuf,
        #[command(flatten)]
        binding: BindingArgs,
        /// The envelope, text or binary (`-` for stdin).
        #[arg(long, default_value = "-")]
        envelope: PathBuf,
        /// Where to write the secret (created with mode 0600; default stdout).
        #[arg(long, default_value = "-")]
        out: PathBuf,
    },
    /// Show an envelope's header without any key.
    Inspect {
        /// The envelope, text or binary (`-` for stdin).
        #[arg(default_value = "-")]
        envelope: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// The identity the envelope is bound to.
#[derive(Args)]
struct BindingArgs {
    /// Tenant id.
    #[arg(long)]
    tenant: String,
    /// User id.
    #[arg(long)]
    user: String,
    /// Device id.
    #[arg(long)]
    device: String,
}

impl BindingArgs {
    fn binding(&self) -> Result<Binding, String> {
        Binding::new(&self.tenant, &self.user, &self.device).map_err(|e| e.to_string())
    }
}

/// The largest input file read (keys, secrets, envelopes are all far smaller).
const MAX_INPUT: u64 = 64 * 1024;

fn read_input(path: &Path) -> Result<Zeroizing<Vec<u8>>, String> {
    let mut buf = Zeroizing::new(Vec::new());
    let reader: Box<dyn Read> = if path == Path::new("-") {
        Box::new(io::stdin())
    } else {
        Box::new(File::open(path).map_err(|e| format!("{}: {e}", path.display()))?)
    };
    reader
        .take(MAX_INPUT + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if buf.len() as u64 > MAX_INPUT {
        return Err(format!("{}: larger than {MAX_INPUT} bytes", path.display()));
    }
    Ok(buf)
}

/// Writes to stdout for `-`, else to a new file with mode 0600 (refusing to replace an
/// existing file unless `replace`).
fn write_output(path: &Path, bytes: &[u8], replace: bool) -> Result<(), String> {
    if path == Path::new("-") {
        let mut out = io::stdout().lock();
        return out
            .write_all(bytes)
            .and_then(|()| out.flush())
            .map_err(|e| e.to_string());
    }
    let mut opts = OpenOptions::new();
    opts.write(true);
    if replace {
        opts.create(true).truncate(true);
    } else {
        opts.create_new(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// A file's text for PEM keys: PEM allows surrounding whitespace (RFC 7468 §3).
fn text(bytes: &[u8]) -> Option<&str> {
    std::str::from_utf8(bytes).ok().map(str::trim)
}

/// A text envelope as a file holds it: exactly one trailing line ending ("\n" or
/// "\r\n", what `seal > file` writes) is removed, a CLI-only convenience; any other
/// whitespace stays and is refused by the envelope decoder (FORMAT.md §6).
fn envelope_text(bytes: &[u8]) -> Option<&str> {
    let t = std::str::from_utf8(bytes).ok()?;
    let t = t
        .strip_suffix('\n')
        .map_or(t, |t| t.strip_suffix('\r').unwrap_or(t));
    Some(t)
}

fn load_private_key(path: &Path) -> Result<ServicePrivateKey, String> {
    let raw = read_input(path)?;
    match text(&raw) {
        Some(t) if t.starts_with("-----BEGIN") => ServicePrivateKey::from_pkcs8_pem(t),
        _ => ServicePrivateKey::from_pkcs8_der(&raw),
    }
    .map_err(|e| format!("{}: {e}", path.display()))
}

fn load_public_key(path: &Path) -> Result<ServicePublicKey, String> {
    let raw = read_input(path)?;
    match text(&raw) {
        Some(t) if t.starts_with("-----BEGIN") => ServicePublicKey::from_pem(t),
        _ => ServicePublicKey::from_spki_der(&raw),
    }
    .map_err(|e| format!("{}: {e}", path.display()))
}

fn load_envelope(path: &Path) -> Result<Envelope, String> {
    let raw = read_input(path)?;
    match envelope_text(&raw) {
        Some(t) if t.starts_with(pin_recovery::TEXT_PREFIX) => Envelope::from_text(t),
        _ => Envelope::from_bytes(&raw),
    }
    .map_err(|e| format!("{}: {e}", path.display()))
}

fn load_secret(path: &Path) -> Result<RecoverySecret, String> {
    let raw = read_input(path)?;
    let mut bytes = Zeroizing::new([0u8; RecoverySecret::LEN]);
    if raw.len() == RecoverySecret::LEN {
        bytes.copy_from_slice(&raw);
    } else {
        let hex = text(&raw).ok_or("secret: neither 32 raw bytes nor hex")?;
        let decoded = base16ct::mixed::decode(hex, &mut bytes[..])
            .map_err(|_| "secret: expected 64 hex digits or 32 raw bytes")?;
        if decoded.len() != RecoverySecret::LEN {
            return Err("secret: expected 64 hex digits or 32 raw bytes".into());
        }
    }
    Ok(RecoverySecret::from_bytes(&mut bytes))
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Keygen {
            suite,
            rsa_bits,
            out,
            force,
        } => {
            let key = match suite {
                Suite::RsaOaepSha256Aes256Gcm => ServicePrivateKey::generate_rsa(rsa_bits),
                Suite::HpkeXWingSha256Aes256Gcm => ServicePrivateKey::generate_xwing(),
                _ => ServicePrivateKey::generate_p256(),
            }
            .map_err(|e| e.to_string())?;
            let pem = key.to_pkcs8_pem().map_err(|e| e.to_string())?;
            write_output(&out, pem.as_bytes(), force)?;
            eprintln!("{} key {}", key.suite(), key.key_id());
        }
        Command::Pubkey { key, der, out } => {
            let key = load_private_key(&key)?;
            let public = key.public_key();
            if der {
                write_output(&out, public.to_spki_der(), true)?;
            } else {
                write_output(&out, public.to_pem().as_bytes(), true)?;
            }
            eprintln!("{} key {}", public.suite(), public.key_id());
        }
        Command::Seal {
            pubkey,
            binding,
            secret,
            binary,
            out,
        } => {
            let public = load_public_key(&pubkey)?;
            let secret = load_secret(&secret)?;
            let envelope = public
                .seal(&secret, &binding.binding()?)
                .map_err(|e| e.to_string())?;
            if binary {
                write_output(&out, envelope.as_bytes(), true)?;
            } else {
                write_output(&out, format!("{}\n", envelope.to_text()).as_bytes(), true)?;
            }
        }
        Command::Open {
            key,
            binding,
            envelope,
            out,
        } => {
            if key == Path::new("-") && envelope == Path::new("-") {
                return Err("only one of --key and --envelope can be read from stdin".into());
            }
            let key = load_private_key(&key)?;
            let envelope = load_envelope(&envelope)?;
            let secret = key
                .open(&envelope, &binding.binding()?)
                .map_err(|e| e.to_string())?;
            let mut hex = Zeroizing::new(base16ct::lower::encode_string(secret.expose_secret()));
            hex.push('\n');
            write_output(&out, hex.as_bytes(), false)?;
        }
        Command::Inspect { envelope, json } => {
            let e = load_envelope(&envelope)?;
            if json {
                let doc = serde_json::json!({
                    "version": e.version(),
                    "suite": e.suite().name(),
                    "suite_id": e.suite().id(),
                    "key_id": e.key_id(),
                    "envelope_id": e.envelope_id(),
                    "binding": e.binding(),
                    "created_at": e.created_at(),
                    "size": e.as_bytes().len(),
                });
                println!("{doc}");
            } else {
                println!("version:     {}", e.version());
                println!("suite:       {} (0x{:04x})", e.suite(), e.suite().id());
                println!("key id:      {}", e.key_id());
                println!("envelope id: {}", e.envelope_id());
                println!("tenant:      {}", e.binding().tenant());
                println!("user:        {}", e.binding().user());
                println!("device:      {}", e.binding().device());
                println!(
                    "created at:  {} (seconds since the Unix epoch)",
                    e.created_at()
                );
                println!("size:        {} bytes", e.as_bytes().len());
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::envelope_text;

    #[test]
    fn only_one_trailing_line_ending_is_removed_from_text_envelopes() {
        assert_eq!(envelope_text(b"pinrec1.AA\n"), Some("pinrec1.AA"));
        assert_eq!(envelope_text(b"pinrec1.AA\r\n"), Some("pinrec1.AA"));
        assert_eq!(envelope_text(b"pinrec1.AA"), Some("pinrec1.AA"));
        assert_eq!(envelope_text(b"pinrec1.AA\n\n"), Some("pinrec1.AA\n"));
        assert_eq!(envelope_text(b" pinrec1.AA\n"), Some(" pinrec1.AA"));
        assert_eq!(envelope_text(b"pinrec1.AA \n"), Some("pinrec1.AA "));
    }
}
