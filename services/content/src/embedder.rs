//! The service's own sentence-embedding model: a BERT-family encoder (all-MiniLM-L6-v2
//! class) run on the CPU by candle, its tokenizer read by Hugging Face `tokenizers`.
//! Loaded once from a folder holding `config.json`, `tokenizer.json` and
//! `model.safetensors` (the layout of a sentence-transformers model); a text's vector
//! is the mean of its tokens' last hidden states, scaled to unit length.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, Tokenizer, TruncationParams};

use crate::vectors;

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("{file}: {reason}")]
    Load { file: String, reason: String },
    #[error("tokenizing: {0}")]
    Tokenize(String),
    #[error("running the model: {0}")]
    Model(#[from] candle_core::Error),
    #[error("the model gave a vector that is zero or not finite")]
    Degenerate,
}

pub struct Embedder {
    name: String,
    model: BertModel,
    tokenizer: Tokenizer,
    dims: usize,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder")
            .field("name", &self.name)
            .field("dims", &self.dims)
            .finish_non_exhaustive()
    }
}

fn load_error(dir: &Path, file: &str, reason: impl ToString) -> EmbedError {
    EmbedError::Load {
        file: dir.join(file).display().to_string(),
        reason: reason.to_string(),
    }
}

impl Embedder {
    /// Loads the model in `dir`; texts are cut at `max_tokens` word pieces.
    pub fn load(dir: &Path, name: &str, max_tokens: usize) -> Result<Self, EmbedError> {
        let config_text = std::fs::read_to_string(dir.join("config.json"))
            .map_err(|e| load_error(dir, "config.json", e))?;
        let config: Config =
            serde_json::from_str(&config_text).map_err(|e| load_error(dir, "config.json", e))?;
        let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))
            .map_err(|e| load_error(dir, "tokenizer.json", e))?;
        let max_length = max_tokens.clamp(8, config.max_position_embeddings);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length,
                ..TruncationParams::default()
            }))
            .map_err(|e| load_error(dir, "tokenizer.json", e))?;
        tokenizer.with_padding(Some(PaddingParams::default()));
        let weights = std::fs::read(dir.join("model.safetensors"))
            .map_err(|e| load_error(dir, "model.safetensors", e))?;
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &Device::Cpu)
            .map_err(|e| load_error(dir, "model.safetensors", e))?;
        let model =
            BertModel::load(vb, &config).map_err(|e| load_error(dir, "model.safetensors", e))?;
        let embedder = Self {
            name: name.to_owned(),
            dims: config.hidden_size,
            model,
            tokenizer,
        };
        // A model that loads but cannot run fails here, at start-up, not in a job.
        embedder
            .embed(&["ready"])
            .map_err(|e| load_error(dir, "model.safetensors", e))?;
        Ok(embedder)
    }

    /// The name its vectors are stored under.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn dims(&self) -> usize {
        self.dims
    }

    /// One unit vector per text, in order. CPU-bound: call it off the async workers.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| EmbedError::Tokenize(e.to_string()))?;
        let device = Device::Cpu;
        let rows = |pick: fn(&tokenizers::Encoding) -> &[u32]| -> Result<Tensor, EmbedError> {
            let rows = encodings
                .iter()
                .map(|e| Tensor::new(pick(e), &device))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Tensor::stack(&rows, 0)?)
        };
        let ids = rows(|e| e.get_ids())?;
        let mask = rows(|e| e.get_attention_mask())?;
        let types = ids.zeros_like()?;
        let hidden = self.model.forward(&ids, &types, Some(&mask))?;
        // Mean over the real tokens only (padding is masked out).
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
        let counts = mask.sum(1)?;
        let means: Vec<Vec<f32>> = summed.broadcast_div(&counts)?.to_vec2()?;
        means
            .iter()
            .map(|m| vectors::normalize(m).ok_or(EmbedError::Degenerate))
            .collect()
    }
}
