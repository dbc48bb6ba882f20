//! Just enough `multipart/form-data` (RFC 7578) for the fakes: the parts of
//! a body, each with its field name, its file name if it is a file, and its bytes.

/// One part of a form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// The form field's name.
    pub name: String,
    /// The file name, for a file part.
    pub file_name: Option<String>,
    /// The part's content type, when it says.
    pub content_type: Option<String>,
    /// The bytes.
    pub data: Vec<u8>,
}

/// The boundary of a `multipart/form-data; boundary=…` content type.
pub fn boundary(content_type: &str) -> Option<String> {
    let (kind, params) = content_type.split_once(';')?;
    if !kind.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.split(';').find_map(|param| {
        let (key, value) = param.trim().split_once('=')?;
        key.eq_ignore_ascii_case("boundary").then(|| value.trim_matches('"').to_owned())
    })
}

/// The parts of `body`; `None` when it is not well formed.
pub fn parse(body: &[u8], boundary: &str) -> Option<Vec<Part>> {
    let delimiter = format!("--{boundary}").into_bytes();
    let mut parts = Vec::new();
    let mut rest = &body[find(body, &delimiter)? + delimiter.len()..];
    loop {
        if rest.starts_with(b"--") {
            return Some(parts);
        }
        rest = rest.strip_prefix(b"\r\n")?;
        let end = find(rest, &[b"\r\n".as_slice(), &delimiter].concat())?;
        parts.push(part(&rest[..end])?);
        rest = &rest[end + 2 + delimiter.len()..];
    }
}

fn part(raw: &[u8]) -> Option<Part> {
    let split = find(raw, b"\r\n\r\n")?;
    let headers = std::str::from_utf8(&raw[..split]).ok()?;
    let mut part = Part { name: String::new(), file_name: None, content_type: None, data: raw[split + 4..].to_vec() };
    for header in headers.split("\r\n") {
        let (key, value) = header.split_once(':')?;
        if key.eq_ignore_ascii_case("content-type") {
            part.content_type = Some(value.trim().to_owned());
        }
        if key.eq_ignore_ascii_case("content-disposition") {
            for param in value.split(';').skip(1) {
                let Some((key, value)) = param.trim().split_once('=') else { continue };
                let value = value.trim_matches('"').to_owned();
                match key {
                    "name" => part.name = value,
                    "filename" => part.file_name = Some(value),
                    _ => {}
                }
            }
        }
    }
    Some(part)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_files_are_read() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"chat_id\"\r\n\r\n42\r\n--XyZ\r\n\
Content-Disposition: form-data; name=\"document\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nhi\r\nthere\r\n--XyZ--\r\n";
        let parts = parse(body, &boundary("multipart/form-data; boundary=XyZ").unwrap()).unwrap();
        assert_eq!(parts[0].name, "chat_id");
        assert_eq!(parts[0].data, b"42");
        assert_eq!(
            (parts[1].file_name.as_deref(), parts[1].data.as_slice()),
            (Some("a.txt"), b"hi\r\nthere".as_slice())
        );
    }
}
