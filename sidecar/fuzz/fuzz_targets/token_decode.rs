//! Fuzzes the destination token decoder: it must never panic, and whatever it accepts must
//! encode back to the same bytes (one canonical encoding per destination).
#![no_main]

use libfuzzer_sys::fuzz_target;
use warren_core::token;

fuzz_target!(|data: &[u8]| {
    if let Ok(destination) = token::decode(data) {
        let encoded = token::encode(&destination).expect("a decoded destination encodes");
        assert_eq!(encoded, data, "non-canonical token accepted");
    }
});
