//! A local HTTP server that takes POSTs to `/hook` as a webhook or callback receiver
//! would, recording each request; it can refuse the first ones (500) to test retries.

use std::sync::{Arc, Mutex};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub signature: String,
    pub timestamp: String,
    pub traceparent: String,
    pub body: String,
    /// Whether it was taken (204) rather than refused (500).
    pub taken: bool,
}

#[derive(Debug, Default)]
struct State {
    refuse: usize,
    received: Vec<Received>,
}

/// A running receiver.
#[derive(Clone)]
pub struct Receiver {
    pub port: u16,
    state: Arc<Mutex<State>>,
}

impl Receiver {
    /// Starts one that refuses its first `refuse` requests.
    pub fn start(refuse: usize) -> Self {
        let state = Arc::new(Mutex::new(State {
            refuse,
            received: Vec::new(),
        }));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        let shared = state.clone();
        let server = HttpServer::new(move || {
            let state = shared.clone();
            App::new().route(
                "/hook",
                web::post().to(move |req: HttpRequest, body: String| {
                    let state = state.clone();
                    async move {
                        let header = |n: &str| {
                            req.headers()
                                .get(n)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or_default()
                                .to_owned()
                        };
                        let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
                        let taken = s.refuse == 0;
                        s.refuse = s.refuse.saturating_sub(1);
                        s.received.push(Received {
                            signature: header("x-peermesh-signature"),
                            timestamp: header("x-peermesh-timestamp"),
                            traceparent: header("traceparent"),
                            body,
                            taken,
                        });
                        if taken {
                            HttpResponse::NoContent().finish()
                        } else {
                            HttpResponse::InternalServerError().finish()
                        }
                    }
                }),
            )
        })
        .workers(1)
        .listen(listener)
        .expect("listen")
        .run();
        actix_web::rt::spawn(server);
        Self { port, state }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<Received> {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .received
            .clone()
    }

    /// Waits (up to 10 s) until `done` holds for what was received; returns it.
    pub async fn until(&self, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        for _ in 0..200 {
            let received = self.received();
            if done(&received) {
                return received;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!(
            "the receiver never got what was awaited: {:?}",
            self.received()
        );
    }
}
