//! A WAGI worker for `tracer serve`: one module, routes chosen by PATH_INFO.
//!
//! WAGI (CGI for WASI): the request arrives as environment variables (REQUEST_METHOD, PATH_INFO,
//! QUERY_STRING, CONTENT_TYPE, HTTP_*, ...) and the body on stdin; the response leaves on stdout as
//! header lines, a blank line, then the body. stderr lines become console logs of the request.
//!
//! Routes:
//!   /echo       the request body back, with the request's content type
//!   /env        the WAGI environment as `KEY=value` lines, sorted
//!   /log        writes two stderr lines (console logs), then answers 200
//!   /status/N   answers with status N
//!   /redirect   answers 302 with a `location:` header
//!   /panic      a Rust panic (unwrap on None, two calls deep) -> 500 from the host
//!   /loop       never returns -> stopped by the fuel or wall-time limit
//!   /membomb    allocates 1 MiB chunks until the memory limit stops it
//!   /malformed  writes no blank line after the headers -> 502 from the host
//!   anything else: 404
use std::collections::HashMap;
use std::io::{Read, Write};

mod routes {
    use std::collections::HashMap;

    #[inline(never)]
    pub fn lookup_user(users: &HashMap<String, u32>, name: &str) -> u32 {
        // The bug this example shows in a stack trace: a missing key is unwrapped.
        *users.get(name).unwrap()
    }

    #[inline(never)]
    pub fn greet(name: &str) -> String {
        let users: HashMap<String, u32> = HashMap::new();
        format!("hello {} (#{})", name, lookup_user(&users, name))
    }
}

#[inline(never)]
fn black_box<T>(x: T) -> T {
    unsafe {
        let r = std::ptr::read_volatile(&x);
        std::mem::forget(x);
        r
    }
}

fn respond(status: u16, content_type: &str, extra: &[(&str, String)], body: &[u8]) {
    let out = std::io::stdout();
    let mut w = out.lock();
    write!(w, "status: {}\ncontent-type: {}\n", status, content_type).unwrap();
    for (k, v) in extra {
        write!(w, "{}: {}\n", k, v).unwrap();
    }
    w.write_all(b"\n").unwrap();
    w.write_all(body).unwrap();
    w.flush().unwrap();
}

fn main() {
    let path = std::env::var("PATH_INFO").unwrap_or_default();
    match path.as_str() {
        "/echo" => {
            let mut body = Vec::new();
            std::io::stdin().read_to_end(&mut body).unwrap();
            let ct = std::env::var("CONTENT_TYPE")
                .ok()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "application/octet-stream".to_string());
            respond(200, &ct, &[("x-echo-length", body.len().to_string())], &body);
        }
        "/env" => {
            let vars: HashMap<String, String> = std::env::vars().collect();
            let mut keys: Vec<&String> = vars.keys().collect();
            keys.sort();
            let mut text = String::new();
            for k in keys {
                text.push_str(&format!("{}={}\n", k, vars[k]));
            }
            respond(200, "text/plain; charset=utf-8", &[], text.as_bytes());
        }
        "/log" => {
            eprintln!("handling /log");
            eprintln!("second console line");
            respond(200, "text/plain", &[], b"logged\n");
        }
        "/redirect" => {
            let out = std::io::stdout();
            let mut w = out.lock();
            w.write_all(b"location: /echo\n\n").unwrap();
        }
        "/panic" => {
            let name = black_box(String::from("ferris"));
            respond(200, "text/plain", &[], routes::greet(&name).as_bytes());
        }
        "/loop" => {
            let mut i: u64 = 0;
            loop {
                i = black_box(i.wrapping_add(1));
            }
        }
        "/membomb" => {
            let mut keep: Vec<Vec<u8>> = Vec::new();
            loop {
                let mut chunk = Vec::with_capacity(1 << 20);
                chunk.resize(1 << 20, 1u8);
                keep.push(black_box(chunk));
            }
        }
        "/malformed" => {
            let out = std::io::stdout();
            let mut w = out.lock();
            w.write_all(b"content-type: text/plain").unwrap();
        }
        p if p.starts_with("/status/") => {
            let code: u16 = p["/status/".len()..].parse().unwrap_or(400);
            respond(code, "text/plain", &[], format!("status {}\n", code).as_bytes());
        }
        _ => respond(404, "text/plain", &[], b"not found\n"),
    }
}
