//! AdamW whose moments are part of the checkpoint.
//!
//! candle's `AdamW` keeps its moments private, so every `llmzip train --resume` restarted them
//! from zero. Adam's first step after that is `±lr` on every weight (the bias-corrected ratio of
//! one gradient to its own magnitude), and at the peak rates of a long run that knocked validation
//! back by about 0.06 bpc, which took 20–30 MB of training to win back (docs/training.md, run 4
//! and `gru4`). This is the same update, term for term and in the same tensor operations as
//! candle 0.11's `AdamW::step` (a unit test holds the two equal), with its state saved next to the
//! weights. A checkpoint written before this existed has no moments: resuming it warms the rate up
//! again over [`AdamW::REWARM_STEPS`] steps while the moments are re-estimated.

use std::collections::HashMap;
use std::path::Path;

use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor, Var};

use crate::{Error, Result};

/// The optimizer's state file inside a checkpoint directory.
pub(super) const OPTIMIZER_FILE: &str = "optimizer.safetensors";

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const EPS: f64 = 1e-8;

struct Slot {
    name: String,
    var: Var,
    m: Var,
    v: Var,
}

/// Decoupled-weight-decay Adam over named parameters (Loshchilov & Hutter), with state that can
/// be saved and restored.
pub(super) struct AdamW {
    slots: Vec<Slot>,
    step_t: u64,
    weight_decay: f64,
    /// Steps left in a re-warm-up after resuming without moments (0 otherwise).
    rewarm_left: u64,
}

impl AdamW {
    /// Steps over which the rate ramps up again after resuming a checkpoint without moments.
    pub(super) const REWARM_STEPS: u64 = 256;

    /// Fresh state (zero moments) for `vars`.
    pub(super) fn new(vars: &[(String, Var)], weight_decay: f64) -> Result<Self> {
        let slots = vars
            .iter()
            .map(|(name, var)| -> Result<Slot> {
                let zeros = || Var::zeros(var.shape(), var.dtype(), var.device());
                Ok(Slot {
                    name: name.clone(),
                    var: var.clone(),
                    m: zeros()?,
                    v: zeros()?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            slots,
            step_t: 0,
            weight_decay,
            rewarm_left: 0,
        })
    }

    /// Whether any step was taken (a state worth saving: zero moments saved as if learned would
    /// skip the re-warm-up at the next resume).
    pub(super) fn has_state(&self) -> bool {
        self.step_t > 0
    }

    /// Restores the moments saved in `dir`. Without a saved state (a checkpoint from before the
    /// moments were saved), keeps zero moments and re-warms the rate instead; returns whether
    /// moments were found.
    pub(super) fn restore(&mut self, dir: &Path) -> Result<bool> {
        let path = dir.join(OPTIMIZER_FILE);
        if !path.exists() {
            self.rewarm_left = Self::REWARM_STEPS;
            return Ok(false);
        }
        let device = self.slots.first().map(|s| s.var.device().clone());
        let Some(device) = device else {
            return Ok(true);
        };
        let saved = candle_core::safetensors::load(&path, &device)?;
        let what_to_do = "delete it to resume with zero moments (the rate then re-warms)";
        let bad = |what: String| Error::Model(format!("{}: {what}; {what_to_do}", path.display()));
        let get = |key: &str| -> Result<&Tensor> {
            saved.get(key).ok_or_else(|| bad(format!("no '{key}'")))
        };
        let count = |key: &str| -> Result<u64> {
            let v = match saved.get(key) {
                // Files written before the re-warm-up was saved have no such entry.
                None if key == "rewarm_left" => return Ok(0),
                _ => get(key)?
                    .to_dtype(DType::F64)?
                    .flatten_all()?
                    .to_vec1::<f64>()?,
            };
            match v.first() {
                Some(&x) if x >= 0.0 && x.fract() == 0.0 && x < 1e15 => Ok(x as u64),
                _ => Err(bad(format!("an invalid '{key}'"))),
            }
        };
        let step = count("step")?;
        let rewarm_left = count("rewarm_left")?.min(Self::REWARM_STEPS);
        for slot in &self.slots {
            for (key, moment) in [("m", &slot.m), ("v", &slot.v)] {
                let t = get(&format!("{key}.{}", slot.name))?;
                if t.shape() != slot.var.shape() {
                    return Err(bad(format!(
                        "'{key}.{}' has shape {:?}, the weight {:?}",
                        slot.name,
                        t.dims(),
                        slot.var.dims()
                    )));
                }
                moment.set(&t.to_dtype(slot.var.dtype())?)?;
            }
        }
        self.step_t = step;
        self.rewarm_left = rewarm_left;
        Ok(true)
    }

    /// Writes the moments, the step count and what is left of a re-warm-up to `path`.
    pub(super) fn save(&self, path: &Path) -> Result<()> {
        let mut out: HashMap<String, Tensor> = HashMap::new();
        for slot in &self.slots {
            out.insert(format!("m.{}", slot.name), slot.m.as_tensor().clone());
            out.insert(format!("v.{}", slot.name), slot.v.as_tensor().clone());
        }
        let device = self
            .slots
            .first()
            .map(|s| s.var.device().clone())
            .unwrap_or(candle_core::Device::Cpu);
        for (key, value) in [("step", self.step_t), ("rewarm_left", self.rewarm_left)] {
            out.insert(key.into(), Tensor::new(&[value as f64], &device)?);
        }
        candle_core::safetensors::save(&out, path)?;
        Ok(())
    }

    /// One update at rate `lr` (scaled down while re-warming).
    pub(super) fn step(&mut self, grads: &GradStore, lr: f64) -> Result<()> {
        let lr = if self.rewarm_left > 0 {
            let done = Self::REWARM_STEPS - self.rewarm_left + 1;
            self.rewarm_left -= 1;
            lr * done as f64 / Self::REWARM_STEPS as f64
        } else {
            lr
        };
        self.step_t += 1;
        let t = i32::try_from(self.step_t).unwrap_or(i32::MAX);
        let scale_m = 1f64 / (1f64 - BETA1.powi(t));
        let scale_v = 1f64 / (1f64 - BETA2.powi(t));
        let lr_lambda = lr * self.weight_decay;
        for slot in &self.slots {
            let Some(g) = grads.get(&slot.var) else {
                continue;
            };
            let (theta, m, v) = (&slot.var, &slot.m, &slot.v);
            let next_m = ((m.as_tensor() * BETA1)? + (g * (1.0 - BETA1))?)?;
            let next_v = ((v.as_tensor() * BETA2)? + (g.sqr()? * (1.0 - BETA2))?)?;
            let m_hat = (&next_m * scale_m)?;
            let v_hat = (&next_v * scale_v)?;
            let next_theta = (theta.as_tensor() * (1f64 - lr_lambda))?;
            let adjusted = (m_hat / (v_hat.sqrt()? + EPS)?)?;
            let next_theta = (next_theta - (adjusted * lr)?)?;
            m.set(&next_m)?;
            v.set(&next_v)?;
            theta.set(&next_theta)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use candle_nn::{Optimizer, ParamsAdamW};

    fn vars(seed: u64) -> Vec<(String, Var)> {
        let mut rng = crate::models::rng::SplitMix64::new(seed);
        let mut v = |n: usize| -> Vec<f32> {
            (0..n)
                .map(|_| (rng.next_u64() % 2001) as f32 / 1000.0 - 1.0)
                .collect()
        };
        vec![
            (
                "a".into(),
                Var::from_tensor(&Tensor::from_vec(v(12), (3, 4), &Device::Cpu).unwrap()).unwrap(),
            ),
            (
                "b".into(),
                Var::from_tensor(&Tensor::from_vec(v(5), 5, &Device::Cpu).unwrap()).unwrap(),
            ),
        ]
    }

    fn grads(vars: &[(String, Var)], k: usize) -> GradStore {
        // A loss whose gradient changes from step to step: sum((x - k)^3 / 3) over all weights.
        let mut loss = Tensor::new(0f32, &Device::Cpu).unwrap();
        for (_, v) in vars {
            let d = (v.as_tensor() - k as f64).unwrap();
            let c = (d.sqr().unwrap() * &d).unwrap().sum_all().unwrap();
            loss = (loss + (c / 3.0).unwrap()).unwrap();
        }
        loss.backward().unwrap()
    }

    fn values(vars: &[(String, Var)]) -> Vec<Vec<f32>> {
        vars.iter()
            .map(|(_, v)| v.as_tensor().flatten_all().unwrap().to_vec1().unwrap())
            .collect()
    }

    #[test]
    fn steps_like_candles_adamw() {
        let ours = vars(7);
        let theirs = vars(7);
        let mut a = AdamW::new(&ours, 0.01).unwrap();
        let mut b = candle_nn::AdamW::new(
            theirs.iter().map(|(_, v)| v.clone()).collect(),
            ParamsAdamW {
                lr: 0.01,
                weight_decay: 0.01,
                ..Default::default()
            },
        )
        .unwrap();
        for k in 0..5 {
            let lr = 0.01 * (k + 1) as f64;
            a.step(&grads(&ours, k), lr).unwrap();
            b.set_learning_rate(lr);
            b.step(&grads(&theirs, k)).unwrap();
        }
        assert_eq!(values(&ours), values(&theirs));
    }

    #[test]
    fn saved_state_resumes_the_same_trajectory() {
        let dir = tempfile::tempdir().unwrap();
        let straight = vars(3);
        let mut s = AdamW::new(&straight, 0.01).unwrap();
        let split = vars(3);
        let mut first = AdamW::new(&split, 0.01).unwrap();
        for k in 0..3 {
            s.step(&grads(&straight, k), 0.05).unwrap();
            first.step(&grads(&split, k), 0.05).unwrap();
        }
        first.save(&dir.path().join(OPTIMIZER_FILE)).unwrap();
        // A new optimizer over the same weights, as `--resume` builds it.
        let mut second = AdamW::new(&split, 0.01).unwrap();
        assert!(second.restore(dir.path()).unwrap());
        for k in 3..6 {
            s.step(&grads(&straight, k), 0.05).unwrap();
            second.step(&grads(&split, k), 0.05).unwrap();
        }
        assert_eq!(values(&straight), values(&split));
    }

    #[test]
    fn resuming_without_moments_rewarms_the_rate() {
        let dir = tempfile::tempdir().unwrap();
        let w = vars(5);
        let before = values(&w);
        let mut opt = AdamW::new(&w, 0.0).unwrap();
        assert!(!opt.restore(dir.path()).unwrap());
        // Adam's first step moves every weight by the rate; here by 1/REWARM_STEPS of it.
        opt.step(&grads(&w, 9), 1.0).unwrap();
        let step = 1.0 / AdamW::REWARM_STEPS as f32;
        for (b, a) in before.iter().flatten().zip(values(&w).iter().flatten()) {
            assert!(((b - a).abs() - step).abs() < 1e-5, "{b} -> {a}");
        }
    }

    #[test]
    fn a_re_warm_up_cut_by_a_checkpoint_goes_on_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let w = vars(5);
        let mut opt = AdamW::new(&w, 0.0).unwrap();
        assert!(!opt.has_state());
        assert!(!opt.restore(dir.path()).unwrap());
        for k in 0..10 {
            opt.step(&grads(&w, k), 1.0).unwrap();
        }
        assert!(opt.has_state());
        opt.save(&dir.path().join(OPTIMIZER_FILE)).unwrap();
        let mut again = AdamW::new(&w, 0.0).unwrap();
        assert!(again.restore(dir.path()).unwrap());
        assert_eq!(again.rewarm_left, AdamW::REWARM_STEPS - 10);
        assert_eq!(again.step_t, 10);
    }

    #[test]
    fn a_mismatched_state_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let w = vars(1);
        AdamW::new(&w, 0.0)
            .unwrap()
            .save(&dir.path().join(OPTIMIZER_FILE))
            .unwrap();
        let other = vec![(
            "a".to_string(),
            Var::zeros((2, 2), DType::F32, &Device::Cpu).unwrap(),
        )];
        let err = AdamW::new(&other, 0.0)
            .unwrap()
            .restore(dir.path())
            .expect_err("refused");
        assert!(err.to_string().contains("shape"), "{err}");
        assert!(err.to_string().contains("delete it"), "{err}");
    }
}
