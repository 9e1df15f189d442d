//! Raw bytes to an HTTP request, through `httparse` (the parser hyper, and so axum, use).
//!
//! Fuzz inputs for the HTTP targets are request heads as they come off the socket
//! (`GET /api/registry?kind=echo HTTP/1.1\r\nHost: …\r\n\r\n`), so that the seeds are
//! readable and the fuzzer works on what an attacker can actually send. Input that hyper
//! would refuse before any wsreg code runs is skipped.

pub fn parse(data: &[u8]) -> Option<http::Request<()>> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut head = httparse::Request::new(&mut headers);
    if !matches!(head.parse(data), Ok(httparse::Status::Complete(_))) {
        return None;
    }
    let mut builder = http::Request::builder()
        .method(head.method?)
        .uri(head.path?);
    for header in head.headers.iter() {
        builder = builder.header(header.name, header.value);
    }
    builder.body(()).ok()
}
