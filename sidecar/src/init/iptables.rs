//! Running iptables: apply, read back, remove, and turning its failures into one clear line.

use std::io::Write;
use std::process::{Command, Stdio};

use anyhow::{Context, anyhow, bail};

use super::Backend;
use super::rules::{CHAIN, Family, JUMP, RuleSet};

/// Runs `program args`, feeding `stdin`; returns stdout, or an error explaining stderr.
fn run(program: &str, args: &[&str], stdin: Option<&str>) -> anyhow::Result<String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                anyhow!("{program} not found: install iptables (Debian: apt-get install iptables)")
            }
            _ => anyhow!("cannot run {program}: {e}"),
        })?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input.as_bytes())
            .with_context(|| format!("writing rules to {program}"))?;
    }
    let output = child
        .wait_with_output()
        .with_context(|| format!("waiting for {program}"))?;
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    Err(explain(
        program,
        args,
        &String::from_utf8_lossy(&output.stderr),
    ))
}

/// Turns a failed iptables run into one line that says what to fix: the capability, the
/// kernel, or else iptables' own first complaint.
fn explain(program: &str, args: &[&str], stderr: &str) -> anyhow::Error {
    let first = stderr
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .unwrap_or("(no error output)");
    if stderr.contains("Permission denied") || stderr.contains("Operation not permitted") {
        return anyhow!("{program}: permission denied: warren init needs CAP_NET_ADMIN ({first})");
    }
    if stderr.contains("table `nat'") || stderr.contains("Table does not exist") {
        return anyhow!("{program}: this kernel has no nat table ({first})");
    }
    anyhow!("{program} {}: {first}", args.join(" "))
}

/// `<program>-save -t nat`.
fn save(backend: Backend, family: Family) -> anyhow::Result<String> {
    run(
        &format!("{}-save", family.iptables(backend)),
        &["-t", "nat"],
        None,
    )
}

/// Picks the backend already holding nat rules, else nft (else legacy if nft is absent).
pub fn detect_backend(families: &[Family]) -> anyhow::Result<Backend> {
    let mut available = Vec::new();
    let mut first_error = None;
    for backend in [Backend::Nft, Backend::Legacy] {
        match save(backend, families[0]) {
            Ok(text) if text.lines().any(|l| l.starts_with("-A ")) => return Ok(backend),
            Ok(_) => available.push(backend),
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    match (available.first(), first_error) {
        (Some(backend), _) => Ok(*backend),
        (None, Some(error)) => Err(error),
        (None, None) => bail!("no usable iptables backend found"),
    }
}

/// Installs `rules` (idempotently: the chain is replaced, the jump added once).
pub fn apply(backend: Backend, rules: &RuleSet) -> anyhow::Result<()> {
    let program = rules.family.iptables(backend);
    let current = save(backend, rules.family)?;
    let has_jump = current.lines().any(|l| l.trim() == JUMP);
    run(
        &format!("{program}-restore"),
        &["--noflush", "-w"],
        Some(&rules.restore_input(!has_jump)),
    )?;
    Ok(())
}

/// Reads the rules back and checks they are exactly what was meant.
pub fn verify(backend: Backend, rules: &RuleSet) -> anyhow::Result<()> {
    let text = save(backend, rules.family)?;
    let installed: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with(&format!("-A {CHAIN} ")) || l.ends_with(&format!("-j {CHAIN}")))
        .collect();
    let expected = rules.expected_save_lines();
    if installed != expected {
        bail!(
            "{} self-test failed: iptables-save shows {:?}, expected {:?}",
            rules.family.name(),
            installed,
            expected
        );
    }
    Ok(())
}

/// Removes the jump (every copy) and the chain; succeeds when they are already gone.
pub fn cleanup(backend: Backend, family: Family) -> anyhow::Result<()> {
    let text = save(backend, family)?;
    let jumps = text.lines().filter(|l| l.trim() == JUMP).count();
    let mut input = String::from("*nat\n");
    for _ in 0..jumps {
        input.push_str(&JUMP.replacen("-A", "-D", 1));
        input.push('\n');
    }
    if text
        .lines()
        .any(|l| l.trim() == format!(":{CHAIN} - [0:0]") || l.starts_with(&format!(":{CHAIN} ")))
    {
        input.push_str(&format!("-F {CHAIN}\n-X {CHAIN}\n"));
    }
    input.push_str("COMMIT\n");
    run(
        &format!("{}-restore", family.iptables(backend)),
        &["--noflush", "-w"],
        Some(&input),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::explain;

    #[test]
    fn failures_name_what_to_fix() {
        // Messages as iptables 1.8.9 prints them.
        let no_cap = "iptables-nft-save v1.8.9 (nf_tables): Could not fetch rule set generation \
                      id: Permission denied (you must be root)\n";
        assert!(
            explain("iptables-nft-save", &["-t", "nat"], no_cap)
                .to_string()
                .contains("needs CAP_NET_ADMIN")
        );
        let no_nat = "iptables v1.8.9 (legacy): can't initialize iptables table `nat': Table does \
                      not exist (do you need to insmod?)\nPerhaps iptables or your kernel needs \
                      to be upgraded.\n";
        let error = explain("iptables-legacy-save", &["-t", "nat"], no_nat).to_string();
        assert!(error.contains("no nat table"), "{error}");
        assert!(!error.contains('\n'), "one line: {error}");
        let other = "# Warning: iptables-legacy tables present\nip6tables-restore: line 3 failed\n";
        assert_eq!(
            explain("ip6tables-nft-restore", &["--noflush", "-w"], other).to_string(),
            "ip6tables-nft-restore --noflush -w: ip6tables-restore: line 3 failed"
        );
    }
}
