//! Recall@10 of full-text and hybrid search on a small labelled set, with the real
//! all-MiniLM-L6-v2 model (`PEERMESH_EMBED_MODEL_DIR`, made by scripts/embed-model;
//! scripts/test sets it). The figures are printed; README.md reports them.

use std::time::Duration;

use serde_json::Value;

use crate::support::{env, id, item};

/// Eight topics of five documents; a document is relevant to its topic's queries.
const TOPICS: [(&str, [&str; 5]); 8] = [
    (
        "birds",
        [
            "Herons wade through shallow marshes hunting fish at dawn.",
            "The robin built its nest in the hedge and laid three blue eggs.",
            "Migrating geese fly south in a V formation every autumn.",
            "An owl hunts mice at night using its sharp hearing.",
            "Woodpeckers drum on tree trunks to find insects under the bark.",
        ],
    ),
    (
        "cooking",
        [
            "Simmer the onions in butter until they turn golden, then add the stock.",
            "Knead the dough for ten minutes and let it rise before baking the bread.",
            "Season the steak with salt and sear it in a hot cast iron pan.",
            "Whisk eggs with sugar and fold in flour for a light sponge cake.",
            "Chop fresh basil and garlic to make a green pesto sauce for pasta.",
        ],
    ),
    (
        "finance",
        [
            "Quarterly revenue grew ten percent while operating costs stayed flat.",
            "The central bank raised interest rates to slow inflation.",
            "Investors sold shares after the company cut its dividend.",
            "A diversified portfolio of bonds and index funds lowers risk.",
            "The startup raised a seed round from venture capital firms.",
        ],
    ),
    (
        "astronomy",
        [
            "Jupiter is the largest planet in the solar system, with dozens of moons.",
            "The telescope captured light from a galaxy billions of years old.",
            "A solar eclipse happens when the moon passes between the sun and earth.",
            "Astronomers detected a new exoplanet orbiting a distant red dwarf star.",
            "Saturn's rings are made of ice and rock particles.",
        ],
    ),
    (
        "football",
        [
            "The striker scored twice in the second half to win the match.",
            "The goalkeeper saved a penalty in the final minute.",
            "The team's coach changed tactics after a heavy defeat at home.",
            "Fans filled the stadium for the championship final.",
            "The midfielder was sent off after a second yellow card.",
        ],
    ),
    (
        "programming",
        [
            "The compiler reported a type error in the function signature.",
            "Refactor the module so each function does one thing.",
            "The database query was slow until we added an index.",
            "Unit tests catch regressions before the code is deployed.",
            "A memory leak made the server crash after a few hours.",
        ],
    ),
    (
        "gardening",
        [
            "Plant tulip bulbs in autumn for flowers in spring.",
            "Water tomato plants deeply and mulch the soil to keep moisture.",
            "Prune the roses in late winter to encourage new growth.",
            "Compost kitchen scraps to feed the vegetable beds.",
            "Aphids on the beans can be washed off with soapy water.",
        ],
    ),
    (
        "medicine",
        [
            "The doctor prescribed antibiotics for the bacterial infection.",
            "Regular exercise lowers blood pressure and the risk of heart disease.",
            "The vaccine trains the immune system to recognise the virus.",
            "The patient had surgery to repair a torn knee ligament.",
            "A fever and a cough are common symptoms of the flu.",
        ],
    ),
];

/// Per topic: a query in other words than its documents', and one of their words.
const QUERIES: [(&str, &str); 16] = [
    ("birds", "birds"),
    ("birds", "owl"),
    ("cooking", "recipes for dinner"),
    ("cooking", "bread"),
    ("finance", "economy and money"),
    ("finance", "interest rates"),
    ("astronomy", "outer space"),
    ("astronomy", "planet"),
    ("football", "soccer game"),
    ("football", "goalkeeper"),
    ("programming", "software bugs"),
    ("programming", "function"),
    ("gardening", "growing flowers and vegetables"),
    ("gardening", "roses"),
    ("medicine", "health care"),
    ("medicine", "vaccine"),
];

#[actix_web::test]
async fn hybrid_search_finds_more_of_what_is_relevant_than_full_text() {
    let Some(model) = std::env::var_os("PEERMESH_EMBED_MODEL_DIR") else {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI runs this test with the real model (scripts/embed-model)"
        );
        eprintln!("PEERMESH_EMBED_MODEL_DIR is not set: recall not measured");
        return;
    };
    let env = env(&[("EMBED_MODEL_DIR", model.to_string_lossy().into_owned())]).await;
    let user = env.user().await;
    let token = &user.access_token;
    let mut topic_of = std::collections::HashMap::new();
    let mut all = Vec::new();
    for (topic, docs) in TOPICS {
        for body in docs {
            // Titles say nothing of the topic: only the text can match.
            let title = format!("Note {}", all.len() + 1);
            let created = env.create(token, item(&title, body)).await;
            topic_of.insert(id(&created), topic);
            all.push(id(&created));
        }
    }
    // Every item embedded (the service's own model, all-MiniLM-L6-v2 by default).
    for item_id in &all {
        let mut done = false;
        for _ in 0..600 {
            let out = env
                .get(&format!("/api/v1/content/{item_id}/embeddings"), token)
                .await;
            if out["models"][0]["stale"] == false {
                done = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(done, "item {item_id} not embedded in 60 s");
    }
    let recall = |page: &Value, topic: &str| {
        let found = page["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter(|h| topic_of.get(h["item"]["id"].as_str().unwrap_or("")) == Some(&topic))
            .count();
        found as f64 / 5.0
    };
    let (mut text_sum, mut hybrid_sum) = (0.0, 0.0);
    for (topic, query) in QUERIES {
        let q = query.replace(' ', "%20");
        let text = env
            .get(&format!("/api/v1/content/search?q={q}&limit=10"), token)
            .await;
        let hybrid = env
            .get(
                &format!("/api/v1/content/search?q={q}&limit=10&mode=hybrid"),
                token,
            )
            .await;
        assert_eq!(hybrid["mode"], "hybrid");
        let (t, h) = (recall(&text, topic), recall(&hybrid, topic));
        eprintln!("recall@10 {topic:12} {query:32} full text {t:.1}  hybrid {h:.1}");
        text_sum += t;
        hybrid_sum += h;
    }
    let n = QUERIES.len() as f64;
    let (text_recall, hybrid_recall) = (text_sum / n, hybrid_sum / n);
    println!(
        "recall@10 over {} queries, {} items: full text {text_recall:.3}, hybrid {hybrid_recall:.3}",
        QUERIES.len(),
        all.len()
    );
    assert!(
        hybrid_recall >= text_recall + 0.3 && hybrid_recall >= 0.7,
        "full text {text_recall:.3}, hybrid {hybrid_recall:.3}"
    );
}
