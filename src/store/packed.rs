//! Data stored compressed: on SQLite, the request log's payloads (store/payloads.rs), and the
//! `hook_results` of records written before those existed. On SQLite every byte of a record is
//! written twice (the WAL, then the database), and request bodies and hook results (about
//! 2.6 KB of very repetitive JSON for ten checks) are most of those bytes.
//!
//! The stored form is a BLOB: a format byte, then an LZ4 block with the data's length before it
//! (little-endian u32). Values stored as TEXT (before this form existed) read back as they are.

use super::db::Value;

/// The format byte of an LZ4 block.
const LZ4: u8 = 1;

/// LZ4 never expands a byte into more than 255, so a longer stated length is damage.
const MAX_RATIO: usize = 255;

/// Compressed straight into the stored form, in one buffer.
pub fn pack_bytes(input: &[u8]) -> Vec<u8> {
    let head = 1 + 4;
    let mut out = vec![0; head + lz4_flex::block::get_maximum_output_size(input.len())];
    out[0] = LZ4;
    out[1..head].copy_from_slice(&(input.len() as u32).to_le_bytes());
    // The buffer has the room LZ4 asks for, so compressing into it cannot fail.
    let n = lz4_flex::block::compress_into(input, &mut out[head..])
        .expect("the buffer holds LZ4's largest output");
    out.truncate(head + n);
    out
}

/// The text of a stored value: TEXT as it is, a packed BLOB unpacked; `None` for NULL.
pub fn text(stored: Value) -> Result<Option<String>, String> {
    match stored {
        Value::Null => Ok(None),
        Value::Text(t) => Ok(Some(t.to_string())),
        Value::Blob(b) => unpack(b).map(Some),
        Value::Int(_) | Value::Real(_) => Err("a number where packed text was expected".into()),
    }
}

fn unpack(stored: &[u8]) -> Result<String, String> {
    String::from_utf8(unpack_bytes(stored)?).map_err(|e| format!("damaged packed text: {e}"))
}

/// The bytes [`pack_bytes`] stored.
pub fn unpack_bytes(stored: &[u8]) -> Result<Vec<u8>, String> {
    let Some((&LZ4, block)) = stored.split_first() else {
        return Err(format!("unknown packed form {:?}", stored.first().copied()));
    };
    let stated = block
        .get(..4)
        .map(|n| u32::from_le_bytes([n[0], n[1], n[2], n[3]]) as usize);
    if stated.is_none_or(|n| n > block.len().saturating_mul(MAX_RATIO)) {
        return Err("damaged packed data: its stated length cannot be right".into());
    }
    lz4_flex::decompress_size_prepended(block).map_err(|e| format!("damaged packed data: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pack(text: &str) -> Vec<u8> {
        pack_bytes(text.as_bytes())
    }

    #[test]
    fn packed_text_reads_back_the_same_and_smaller() {
        let results =
            r#"{"id":"default.regexMatch","verdict":true,"data":{"not":true}}"#.repeat(20);
        let packed = pack(&results);
        assert!(packed.len() * 4 < results.len(), "{} bytes", packed.len());
        assert_eq!(
            text(Value::Blob(&packed)).unwrap().as_deref(),
            Some(&results[..])
        );
        assert_eq!(text(Value::Blob(&pack(""))).unwrap().as_deref(), Some(""));
    }

    #[test]
    fn text_stored_plain_or_null_reads_as_it_is() {
        assert_eq!(text(Value::Text("{}")).unwrap().as_deref(), Some("{}"));
        assert_eq!(text(Value::Null).unwrap(), None);
    }

    #[test]
    fn damage_is_an_error_not_a_panic() {
        let packed = pack(&"abc".repeat(100));
        assert!(text(Value::Blob(&packed[..packed.len() - 3])).is_err());
        assert!(text(Value::Blob(&[9, 1, 2])).is_err());
        assert!(text(Value::Blob(&[LZ4, 255, 255, 255, 255, 0])).is_err());
        assert!(text(Value::Blob(&[])).is_err());
        assert!(text(Value::Int(3)).is_err());
    }
}
