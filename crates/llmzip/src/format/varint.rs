//! LEB128 variable-length unsigned integers: small lengths cost one byte, which matters for the
//! per-block overhead on tiny files.

use std::io::{Read, Write};

use crate::{Error, Result};

/// Writes `value` as LEB128.
pub fn write_u64(out: &mut impl Write, mut value: u64) -> std::io::Result<()> {
    let mut buf = [0u8; 10];
    let mut len = 0;
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            buf[len] = byte;
            len += 1;
            break;
        }
        buf[len] = byte | 0x80;
        len += 1;
    }
    out.write_all(&buf[..len])
}

/// Reads a LEB128 value; `what` names the field for error messages.
///
/// Rejects encodings longer than 10 bytes or overflowing 64 bits instead of wrapping.
pub fn read_u64(input: &mut impl Read, what: &str) -> Result<u64> {
    let mut value = 0u64;
    for i in 0..10 {
        let mut byte = [0u8];
        input
            .read_exact(&mut byte)
            .map_err(|e| Error::from_read(e, what))?;
        let bits = u64::from(byte[0] & 0x7f);
        if i == 9 && bits > 1 {
            break;
        }
        value |= bits << (7 * i);
        if byte[0] & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(Error::Corrupt(format!("{what} is not a valid integer")))
}

/// Reads a LEB128 value and checks it against an inclusive upper bound.
pub fn read_bounded(input: &mut impl Read, what: &str, max: u64) -> Result<u64> {
    let value = read_u64(input, what)?;
    if value > max {
        return Err(Error::Corrupt(format!(
            "{what} is {value}, more than the allowed {max}"
        )));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_edge_values() {
        for v in [0, 1, 127, 128, 300, u32::MAX as u64, u64::MAX - 1, u64::MAX] {
            let mut buf = Vec::new();
            write_u64(&mut buf, v).unwrap();
            assert_eq!(read_u64(&mut buf.as_slice(), "x").unwrap(), v);
        }
    }

    #[test]
    fn rejects_overlong_and_truncated() {
        let overlong = [0xffu8; 11];
        assert!(matches!(
            read_u64(&mut overlong.as_slice(), "x"),
            Err(Error::Corrupt(_))
        ));
        let truncated = [0x80u8];
        assert!(matches!(
            read_u64(&mut truncated.as_slice(), "x"),
            Err(Error::Truncated(_))
        ));
        let mut buf = Vec::new();
        write_u64(&mut buf, 1000).unwrap();
        assert!(read_bounded(&mut buf.as_slice(), "x", 999).is_err());
    }
}
