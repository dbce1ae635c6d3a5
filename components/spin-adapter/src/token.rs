//! Unguessable tokens and nonces from the host's cryptographic random source.

/// Bytes in a lock token: 128 bits, so two holders never share one.
const TOKEN_BYTES: u64 = 16;

/// A fresh random 128-bit value as 32 lowercase hex digits.
pub fn random_token() -> String {
    to_hex(&wasi::random::random::get_random_bytes(TOKEN_BYTES))
}

/// A fresh random 64-bit value as 16 lowercase hex digits.
pub fn random_nonce() -> String {
    to_hex(&wasi::random::random::get_random_u64().to_be_bytes())
}

/// Lowercase hex encoding.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::to_hex;

    #[test]
    fn hex_is_lowercase_and_zero_padded() {
        assert_eq!(to_hex(&[]), "");
        assert_eq!(to_hex(&[0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
    }
}
