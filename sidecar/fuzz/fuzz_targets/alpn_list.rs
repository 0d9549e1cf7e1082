//! Fuzzes the server's search for the token among a ClientHello's ALPN entries, with the input
//! split into entries the way the ALPN extension frames them (a length byte, then the entry).
#![no_main]

use libfuzzer_sys::fuzz_target;
use warren_core::token;

fuzz_target!(|data: &[u8]| {
    let mut entries = Vec::new();
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let len = (len as usize).min(tail.len());
        entries.push(&tail[..len]);
        rest = &tail[len..];
    }
    let _ = token::find_in_alpn(entries);
});
