//! A tiny sentence-embedding model the tests make: a two-layer BERT (32 dimensions)
//! with fixed pseudo-random weights and a WordPiece vocabulary of letters and digits,
//! in the files and layout of a real sentence-transformers model (`config.json`,
//! `tokenizer.json`, `model.safetensors`). Its vectors mean nothing, but the content
//! service loads and runs it exactly as it does all-MiniLM-L6-v2.

use std::path::Path;

use safetensors::tensor::{Dtype, TensorView};
use serde_json::json;

pub const DIMS: usize = 32;
const LAYERS: usize = 2;
const HEADS: usize = 4;
const INTERMEDIATE: usize = 64;
const POSITIONS: usize = 512;

/// The vocabulary: special tokens, then each letter and digit, alone and as a
/// continuation (`##a`), then punctuation.
fn vocabulary() -> Vec<String> {
    let mut vocab: Vec<String> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let symbols: Vec<char> = ('a'..='z').chain('0'..='9').collect();
    vocab.extend(symbols.iter().map(|c| c.to_string()));
    vocab.extend(symbols.iter().map(|c| format!("##{c}")));
    vocab.extend(".,;:!?'\"-()/&".chars().map(|c| c.to_string()));
    vocab
}

fn tokenizer(vocab: &[String]) -> serde_json::Value {
    let ids: serde_json::Map<String, serde_json::Value> = vocab
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), json!(i)))
        .collect();
    let special = |id: usize, content: &str| {
        json!({"id": id, "special": true, "content": content, "single_word": false,
               "lstrip": false, "rstrip": false, "normalized": false})
    };
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [special(0, "[PAD]"), special(1, "[UNK]"), special(2, "[CLS]"),
                         special(3, "[SEP]"), special(4, "[MASK]")],
        "normalizer": {"type": "BertNormalizer", "clean_text": true,
                       "handle_chinese_chars": true, "strip_accents": null, "lowercase": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                       {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                     {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 0}},
                     {"Sequence": {"id": "B", "type_id": 1}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
            "special_tokens": {
                "[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]},
                "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}
            }
        },
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100, "vocab": ids}
    })
}

/// Fixed pseudo-random numbers (a 64-bit LCG), uniform in -0.5..0.5.
struct Weights(u64);

impl Weights {
    fn take(&mut self, n: usize) -> Vec<f32> {
        (0..n)
            .map(|_| {
                self.0 = self
                    .0
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                ((self.0 >> 40) as f32 / (1u64 << 24) as f32) - 0.5
            })
            .collect()
    }
}

/// Writes the model's three files into `dir`.
pub fn write(dir: &Path) {
    let vocab = vocabulary();
    std::fs::create_dir_all(dir).expect("model folder");
    let config = json!({
        "architectures": ["BertModel"], "model_type": "bert",
        "attention_probs_dropout_prob": 0.1, "hidden_dropout_prob": 0.1,
        "hidden_act": "gelu", "hidden_size": DIMS, "initializer_range": 0.02,
        "intermediate_size": INTERMEDIATE, "layer_norm_eps": 1e-12,
        "max_position_embeddings": POSITIONS, "num_attention_heads": HEADS,
        "num_hidden_layers": LAYERS, "pad_token_id": 0,
        "position_embedding_type": "absolute", "type_vocab_size": 2,
        "use_cache": true, "vocab_size": vocab.len()
    });
    std::fs::write(dir.join("config.json"), config.to_string()).expect("config.json");
    std::fs::write(dir.join("tokenizer.json"), tokenizer(&vocab).to_string())
        .expect("tokenizer.json");

    let mut rng = Weights(0x005e_ed0f_7e57);
    let mut tensors: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
    let mut random = |name: String, shape: Vec<usize>| {
        let values = rng.take(shape.iter().product());
        tensors.push((name, shape, values));
    };
    random(
        "embeddings.word_embeddings.weight".into(),
        vec![vocab.len(), DIMS],
    );
    random(
        "embeddings.position_embeddings.weight".into(),
        vec![POSITIONS, DIMS],
    );
    random(
        "embeddings.token_type_embeddings.weight".into(),
        vec![2, DIMS],
    );
    for l in 0..LAYERS {
        let p = format!("encoder.layer.{l}");
        for m in [
            "attention.self.query",
            "attention.self.key",
            "attention.self.value",
            "attention.output.dense",
        ] {
            random(format!("{p}.{m}.weight"), vec![DIMS, DIMS]);
            random(format!("{p}.{m}.bias"), vec![DIMS]);
        }
        random(
            format!("{p}.intermediate.dense.weight"),
            vec![INTERMEDIATE, DIMS],
        );
        random(format!("{p}.intermediate.dense.bias"), vec![INTERMEDIATE]);
        random(format!("{p}.output.dense.weight"), vec![DIMS, INTERMEDIATE]);
        random(format!("{p}.output.dense.bias"), vec![DIMS]);
    }
    let mut norms = vec!["embeddings.LayerNorm".to_owned()];
    for l in 0..LAYERS {
        norms.push(format!("encoder.layer.{l}.attention.output.LayerNorm"));
        norms.push(format!("encoder.layer.{l}.output.LayerNorm"));
    }
    for norm in norms {
        tensors.push((format!("{norm}.weight"), vec![DIMS], vec![1.0; DIMS]));
        tensors.push((format!("{norm}.bias"), vec![DIMS], vec![0.0; DIMS]));
    }
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .into_iter()
        .map(|(name, shape, values)| {
            let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            (name, shape, data)
        })
        .collect();
    let views: Vec<(String, TensorView<'_>)> = bytes
        .iter()
        .map(|(name, shape, data)| {
            let view = TensorView::new(Dtype::F32, shape.clone(), data).expect("tensor");
            (name.clone(), view)
        })
        .collect();
    let file = safetensors::tensor::serialize(views, None).expect("safetensors");
    std::fs::write(dir.join("model.safetensors"), file).expect("model.safetensors");
}
