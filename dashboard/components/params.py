"""Words for the approaches' parameters: a label, a one-line help and a group (basic or advanced) for every
constructor parameter of every approach, in one table. The real parameter name goes into the help, for the
command line (``--param NAME=VALUE``). tests/test_dashboard_journey.py checks that every constructor parameter
has an entry, so a new parameter without words fails a test."""

from __future__ import annotations

BASIC, ADVANCED = "basic", "advanced"

#: approach -> parameter -> (label, one-line help, group); basic parameters are shown in this order
PARAMS: dict[str, dict[str, tuple[str, str, str]]] = {
    "stacking": {
        "n_folds": (
            "Cross-validation folds",
            "How many parts the training leads are cut into to train the base "
            "models out of fold; more is steadier and slower.",
            BASIC,
        ),
        "xgb_n_estimators": (
            "XGBoost trees",
            "Trees in the gradient-boosted model; more fit finer patterns and take longer.",
            BASIC,
        ),
        "rf_n_estimators": ("Random forest trees", "Trees in the random forest; more is steadier and slower.", BASIC),
        "meta_epochs": (
            "Combiner training rounds",
            "Passes over the data for the small network that combines the "
            "four models (it stops early when it no longer improves).",
            BASIC,
        ),
        "seed": ("Random seed", "Same seed, same model: change it to see how much results vary.", ADVANCED),
        "n_jobs": ("CPU cores", "Processor cores used while training.", ADVANCED),
        "max_onehot": (
            "Most categories one-hot encoded",
            "A text column with more distinct values than this is "
            "target-encoded instead of getting one column per value.",
            ADVANCED,
        ),
        "min_frequency": (
            "Rare category threshold",
            "Values seen fewer times than this are grouped as 'other'.",
            ADVANCED,
        ),
        "te_smoothing": (
            "Target encoding smoothing",
            "Pulls rare categories' conversion rates toward the overall rate; higher is more cautious.",
            ADVANCED,
        ),
        "lr_C": (
            "Logistic regression: fit strength",
            "Inverse regularisation of the logistic regression; lower is simpler.",
            ADVANCED,
        ),
        "rf_min_samples_leaf": (
            "Random forest: leads per leaf",
            "Smallest group of leads a forest tree may single out.",
            ADVANCED,
        ),
        "rf_max_features": (
            "Random forest: fields per split",
            "Fields each split may look at ('sqrt', 'log2' or a share such as 0.5).",
            ADVANCED,
        ),
        "xgb_max_depth": ("XGBoost: tree depth", "How many questions deep each boosted tree goes.", ADVANCED),
        "xgb_learning_rate": ("XGBoost: learning rate", "How much each new tree corrects the previous ones.", ADVANCED),
        "xgb_subsample": ("XGBoost: share of leads per tree", "Share of the training leads each tree sees.", ADVANCED),
        "xgb_colsample_bytree": ("XGBoost: share of fields per tree", "Share of the fields each tree sees.", ADVANCED),
        "xgb_min_child_weight": (
            "XGBoost: smallest leaf weight",
            "Higher keeps trees from chasing a few leads.",
            ADVANCED,
        ),
        "svc_C": ("SVM: fit strength", "Inverse regularisation of the support vector machine.", ADVANCED),
        "svc_gamma": ("SVM: kernel width", "'scale', 'auto' or a number.", ADVANCED),
        "svc_max_rows": (
            "SVM: most training leads",
            "The SVM trains on a sample of at most this many leads (it slows down fast with more).",
            ADVANCED,
        ),
        "meta_hidden": ("Combiner: hidden units", "Size of the combining network's hidden layer.", ADVANCED),
        "meta_dropout": ("Combiner: dropout", "Share of units switched off at random while training.", ADVANCED),
        "meta_batch_size": ("Combiner: batch size", "Leads per training step of the combining network.", ADVANCED),
        "meta_learning_rate": ("Combiner: learning rate", "Step size of the combining network.", ADVANCED),
        "meta_patience": ("Combiner: patience", "Rounds without improvement before it stops early.", ADVANCED),
        "meta_min_delta": (
            "Combiner: smallest improvement",
            "How much the validation loss must fall to count as an improvement for early stopping.",
            ADVANCED,
        ),
        "meta_validation": (
            "Combiner: held-out share",
            "Share of training leads kept aside to decide when to stop.",
            ADVANCED,
        ),
        "meta_raw_features": (
            "Combiner: raw fields added",
            "How many of the strongest original fields the combiner also sees (0: only the four models' scores).",
            ADVANCED,
        ),
        "meta_linear_skip": (
            "Combiner: linear shortcut",
            "Adds a direct linear path beside the hidden layer.",
            ADVANCED,
        ),
        "meta_l2": ("Combiner: weight penalty", "L2 regularisation of the combining network.", ADVANCED),
        "meta_refit_full": (
            "Combiner: retrain on every lead",
            "After early stopping, train it again on all training leads.",
            ADVANCED,
        ),
        "explain_background": ("Explanations: reference leads", "Leads the explanations compare against.", ADVANCED),
        "explain_permutations": (
            "Explanations: permutations",
            "Orderings tried by the slow exact explanation method.",
            ADVANCED,
        ),
        "explain_method": (
            "Explanations: method",
            "'fast' (exactly additive, quick) or 'permutation' (slow).",
            ADVANCED,
        ),
    },
    "lora": {
        "epochs": ("Passes over the training leads", "How many times the model reads every training lead.", BASIC),
        "train_rows": ("Training leads used", "Cap on training leads (empty: all); fewer trains faster.", BASIC),
        "batch_size": ("Leads per step", "Leads read together in one training step.", BASIC),
        "grad_accum": (
            "Steps combined per update",
            "Training steps added up before the model is updated (batch size x this = leads per update).",
            BASIC,
        ),
        "learning_rate": ("Learning rate", "How big each update is.", BASIC),
        "r": (
            "Adapter size (rank)",
            "Size of the small trainable matrices added to the language model; larger learns more, trains slower.",
            BASIC,
        ),
        "lora_alpha": ("Adapter strength", "Scale of the adapters' effect (usually twice the adapter size).", BASIC),
        "max_length": ("Most words per lead", "Longest lead description in tokens; longer ones are cut.", BASIC),
        "base_model": (
            "Language model",
            "Folder or name of the language model in the local cache (empty: the shipped SmolLM2-135M).",
            ADVANCED,
        ),
        "lora_dropout": ("Adapter dropout", "Share of adapter units switched off at random while training.", ADVANCED),
        "target_modules": (
            "Layers with adapters",
            'Which attention layers get adapters, e.g. ["q_proj", "v_proj"].',
            ADVANCED,
        ),
        "top_layers": (
            "Adapters on the top layers only",
            "Put adapters on the last N layers only (empty: all); fewer is faster.",
            ADVANCED,
        ),
        "seed": ("Random seed", "Same seed, same model.", ADVANCED),
        "quantize": ("4-bit weights", "'4bit' loads the language model in 4 bits (GPU only; empty: off).", ADVANCED),
        "device": ("Processor", "auto, cpu or cuda (GPU).", ADVANCED),
        "precision": (
            "Number precision",
            "auto, fp32, bf16 or fp16; auto picks bf16 where the processor has it natively.",
            ADVANCED,
        ),
        "warmup_ratio": ("Warm-up share", "Share of training during which the learning rate ramps up.", ADVANCED),
        "weight_decay": ("Weight penalty", "L2 regularisation of the adapters.", ADVANCED),
        "text_style": ("Lead description style", "How each lead is written for the model ('compact').", ADVANCED),
        "drop_constant_share": (
            "Skip near-constant fields",
            "Fields with the same value in at least this share of leads are left out of the text.",
            ADVANCED,
        ),
        "calibration_rows": (
            "Calibration leads",
            "Held-out training leads used to turn answers into probabilities.",
            ADVANCED,
        ),
        "score_batch_size": ("Leads scored together", "Batch size when scoring.", ADVANCED),
        "checkpoint_dir": ("Checkpoint folder", "Where training saves checkpoints (empty: none).", ADVANCED),
        "checkpoint_every": ("Checkpoint every N steps", "How often a checkpoint is written.", ADVANCED),
        "resume": (
            "Resume from a checkpoint",
            "Continue an interrupted training from its checkpoint folder.",
            ADVANCED,
        ),
    },
    "embeddings": {
        "epochs": ("Fine-tuning passes", "Passes over the training calls while tuning the embedding model.", BASIC),
        "n_pairs": ("Comparisons per call", "How many similar/different call pairs each call is tuned on.", BASIC),
        "classifier_type": ("Classifier on top", "logistic (quick, readable) or xgboost.", BASIC),
        "batch_size": ("Calls per step", "Calls read together in one fine-tuning step.", BASIC),
        "margin": ("Contrast margin", "How far apart converting and non-converting calls are pushed.", ADVANCED),
        "max_triplets": ("Most comparisons", "Cap on comparisons used for fine-tuning.", ADVANCED),
        "learning_rate": ("Learning rate", "Step size of the fine-tuning.", ADVANCED),
        "pooling": ("Combining a call's pieces", "mean or max over the pieces of a long call.", ADVANCED),
        "chunk_tokens": ("Piece length", "Tokens per piece when a long call is cut up.", ADVANCED),
        "chunk_overlap": ("Piece overlap", "Tokens shared by neighbouring pieces.", ADVANCED),
        "train_tokens": ("Tokens per call while tuning", "Longest text read per call during fine-tuning.", ADVANCED),
        "use_metadata": ("Use the call's details", "Also feed the call's metadata fields to the classifier.", ADVANCED),
        "C": (
            "Classifier fit strength",
            "Inverse regularisation of the logistic classifier (empty: chosen by cross-validation).",
            ADVANCED,
        ),
        "fine_tune": ("Fine-tune the embeddings", "Off: only the generic embeddings are used.", ADVANCED),
        "seed": ("Random seed", "Same seed, same model.", ADVANCED),
        "base_model": (
            "Embedding model",
            "Folder or name of the sentence model (empty: the shipped all-MiniLM-L6-v2).",
            ADVANCED,
        ),
        "backend": ("Engine", "auto, torch or onnx-int8 (faster on CPU).", ADVANCED),
        "loss": ("Tuning objective", "batch_all or triplet.", ADVANCED),
    },
}


def label(approach: str, name: str) -> str:
    entry = PARAMS.get(approach, {}).get(name)
    return entry[0] if entry else name.replace("_", " ")


def help_text(approach: str, name: str) -> str:
    """The one-line help with the real parameter name for the command line."""
    entry = PARAMS.get(approach, {}).get(name)
    words = entry[1] + " " if entry else ""
    return f"{words}Command line: `--param {name}=VALUE`."


def group(approach: str, name: str) -> str:
    entry = PARAMS.get(approach, {}).get(name)
    return entry[2] if entry else ADVANCED


def basic_order(approach: str) -> list[str]:
    return [n for n, (_, _, g) in PARAMS.get(approach, {}).items() if g == BASIC]


def readable_value(value) -> str:
    """A parameter value as a person reads it: lists without brackets and quotes, true/false as yes/no."""
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) or "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "default"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def describe_changes(approach: str, changed: dict) -> str:
    """``"target modules: q_proj, v_proj; passes over the training leads: 1"``-style text, or "none"."""
    if not changed:
        return "none"
    return "; ".join(f"{label(approach, k).lower()}: {readable_value(v)}" for k, v in changed.items())
