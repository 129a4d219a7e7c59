//! Reading a service's `/metrics` in tests.

use crate::client::TestClient;

/// One scrape of `/metrics`.
pub struct Scrape {
    pub text: String,
}

/// `GET /metrics`: 200 in Prometheus' text format.
pub async fn scrape(client: &TestClient) -> Scrape {
    let resp = client.get("/metrics").await;
    assert_eq!(resp.status(), 200);
    let ct = resp.headers()["content-type"]
        .to_str()
        .unwrap_or_default()
        .to_owned();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    Scrape {
        text: resp.text().await.expect("metrics text"),
    }
}

impl Scrape {
    /// The sum of the samples of `name` whose labels include all of `labels`
    /// (`None` when there is none).
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let wanted: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        let mut found = None;
        for line in self.text.lines().filter(|l| !l.starts_with('#')) {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, label_text) = match series.split_once('{') {
                Some((m, rest)) => (m, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            if metric != name {
                continue;
            }
            let have: Vec<&str> = label_text.split(',').collect();
            if wanted.iter().all(|w| have.contains(&w.as_str())) {
                *found.get_or_insert(0.0) += value.parse::<f64>().ok()?;
            }
        }
        found
    }
}
