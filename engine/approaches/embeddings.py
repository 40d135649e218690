"""Sentence embeddings (all-MiniLM-L6-v2), contrastively fine-tuned, with a classifier on top.

``EmbeddingApproach`` (name ``"embeddings"``) takes a frame with a ``transcript`` column (plus
metadata columns), or a lead table. A lead table with columns of kind ``text`` (call notes, a joined call; the
training table's kinds, else inferred) embeds those only (``Column: text`` lines, each cell cut to 20,000
characters) and encodes its other fields beside the embedding for the head, as ``use_metadata`` does; the split
is saved in ``approach.json`` (``text_split``) and logged (:mod:`engine.approaches._embed_table`). A lead table
without text is serialized whole to sentences (:mod:`engine.data.text`).

* **Chunks.** A text longer than the model's window is split by the tokenizer into overlapping
  windows (``chunk_tokens`` = 256 incl. [CLS]/[SEP], ``chunk_overlap`` = 32 tokens); chunk embeddings
  are pooled per text (``pooling="mean"`` or ``"max"``) and L2-normalised. ``pooling="speakers"``: the
  customer's turns and the agent's turns (any ``Name:`` prefix, :mod:`engine.approaches.speaker_turns`) are
  chunked and mean-pooled apart and the two vectors put side by side (a call without prefixes, or a side
  nobody spoke on, uses the whole call there).
* **Contrastive fine-tuning.** A triplet loss (anchor, positive of the same label, negative of the
  other; cosine distance, ``margin``) on training-text segments (windows of ``train_tokens``), a
  triplet's worth of segments (three) ``n_pairs`` times per training text and at most ``max_triplets``
  triplets' worth in all; sentence-transformers' own ``SentenceTransformerTrainer`` fine-tunes a copy
  of MiniLM. ``loss="batch_all"`` (the default): labelled segments, balanced by class, in batches of
  three times ``batch_size`` (``BatchAllTripletLoss``: every anchor-positive-negative triplet inside a
  batch that violates the margin counts, so one batch of 48 segments gives thousands of triplets).
  ``loss="triplet"``: explicit triplets drawn at random (``TripletLoss``), ``batch_size`` a step.
  Both make the same number of steps over the same number of segments. Progress goes through
  :mod:`engine.callbacks` (a ``TrainerCallback`` adapter); a callback raising ``TrainingCancelled``
  stops training.
* **Classifiers.** Logistic regression (L2; ``C=None`` picks C by 5-fold CV on ROC-AUC) or XGBoost,
  on the pooled embeddings, optionally with metadata features (``use_metadata``: numbers scaled,
  categories one-hot, ISO times as hour and weekday); or ``hybrid``: the embeddings' logistic regression
  and a TF-IDF 1-2-gram one on the words, stacked on out-of-fold probabilities
  (:mod:`engine.approaches.lexical`).
* **Both embeddings.** Every fit trains a classifier on the generic MiniLM embeddings and one on the
  fine-tuned embeddings; ``predict_proba(X, embeddings="fine_tuned"|"generic")`` and
  ``embed(texts, which=...)`` expose both.
* **Explanations.** ``explain`` occludes one sentence at a time (p(full) - p(without the sentence),
  batched) and, with metadata, adds exact linear / tree SHAP values of the metadata features
  (log-odds, converted to probability points by the local slope p(1-p)). The occlusion scores each
  variant with the whole head (a hybrid's TF-IDF half sees the sentence go too); a hybrid gives no
  metadata SHAP rows.
* **Files.** ``save`` writes the fine-tuned SentenceTransformer folder (safetensors), the classifiers
  (XGBoost JSON or joblib for logistic regression), the metadata encoder (JSON) and ``approach.json``.
"""

from __future__ import annotations

import json
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from engine import onnx_encoder
from engine.approaches._embed_table import field_occlusion, split_columns, split_line, table_texts
from engine.approaches.base import AfterFit, Approach, contribution_frame
from engine.approaches.embeddings_parts import (  # noqa: F401 - re-exported: callers import them from here
    MetadataEncoder,
    _truncate,
    base_model_path,
    embedding_dimension,
    generic_onnx_graph,
    load_sentence_model,
    split_sentences,
)
from engine.approaches.lexical import hybrid_frame, hybrid_head
from engine.approaches.speaker_turns import speaker_pieces
from engine.callbacks import CallbackList, Progress
from engine.data.text import frame_to_texts, valid_utf8
from engine.projection import store_projections
from engine.signing import dump_signed, load_pickle

TEXT_COLUMN = "transcript"
WHICH = ("fine_tuned", "generic")
BACKENDS = ("auto", "torch", "onnx-int8")
LOSSES = ("batch_all", "triplet")
CLASSIFIERS = ("logistic", "xgboost", "hybrid")
POOLINGS = ("mean", "max", "speakers")
EXPORT_STAGE = "export to int8 ONNX"
HEAD_STAGE = "classifier head"
#: Seconds each stage of a fit took on the demo transcripts (280 calls, 1 epoch, 2 CPU cores): the progress
#: bar's shares of the fit (fine-tuning, the fine-tuned model's ONNX export, each encoding pass, each head).
FIT_SHARES = {"fine-tune": 105.0, "export": 6.0, "embed": 10.0, "head": 4.5}


def _progress_adapter(callbacks: CallbackList, stage: str):
    """A transformers ``TrainerCallback`` that forwards progress to our callbacks."""
    from transformers import TrainerCallback

    class _Adapter(TrainerCallback):
        def __init__(self):
            self.last_loss = None

        def on_train_begin(self, args, state, control, **kwargs):
            callbacks.on_train_begin(int(state.max_steps), stage)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                self.last_loss = float(logs["loss"])

        def on_step_end(self, args, state, control, **kwargs):
            # A TrainingCancelled raised by one of our callbacks propagates and stops training.
            callbacks.on_step_end(
                Progress(step=int(state.global_step), total=int(state.max_steps), loss=self.last_loss, stage=stage)
            )

        def on_train_end(self, args, state, control, **kwargs):
            callbacks.on_train_end(stage)

    return _Adapter()


def _store_maps(run, model: Approach, rows, log) -> None:
    """The Embeddings page's default maps, stored with the run (t-SNE only: UMAP compiles for a minute on its first
    use, so the page makes it on demand). A model that cannot embed logs why; the run is fine without them."""
    store_projections(run, model, rows.X, rows.row_ids, methods=("tsne",), log=log)


class EmbeddingApproach(Approach):
    """MiniLM embeddings (generic and contrastively fine-tuned) + logistic regression or XGBoost."""

    name = "embeddings"
    label = "Fine-tuned embeddings"
    input_kind = "transcripts"
    input_kinds = ("transcripts", "leads")
    untrained_part = "generic_embeddings"
    has_embedding_maps = True  # the Embeddings page lists its runs; the maps: after_fit_artifacts

    def after_fit_artifacts(self, input_kind: str) -> tuple[AfterFit, ...]:
        """The base's (a lead table's training profile), then the 2-D maps of the embeddings (the Embeddings
        page), after the stored explanations."""
        maps = AfterFit("explain", "embedding maps (t-SNE)", _store_maps, done="embedding maps stored")
        return (*super().after_fit_artifacts(input_kind), maps)

    def __init__(
        self,
        classifier_type: str = "hybrid",
        epochs: int = 1,
        n_pairs: int = 2,
        margin: float = 0.25,
        max_triplets: int = 600,
        batch_size: int = 16,
        learning_rate: float = 5e-5,
        pooling: str = "mean",
        chunk_tokens: int = 256,
        chunk_overlap: int = 32,
        train_tokens: int = 128,
        use_metadata: bool = False,
        C: float | None = None,
        fine_tune: bool = True,
        seed: int = 42,
        base_model: str | None = None,
        backend: str = "auto",
        loss: str = "batch_all",
    ):
        self.classifier_type = classifier_type
        self.epochs = epochs
        self.n_pairs = n_pairs
        self.margin = margin
        self.max_triplets = max_triplets
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.pooling = pooling
        self.chunk_tokens = chunk_tokens
        self.chunk_overlap = chunk_overlap
        self.train_tokens = train_tokens
        self.use_metadata = use_metadata
        self.C = C
        self.fine_tune = fine_tune
        self.seed = seed
        self.base_model = base_model
        self.backend = backend
        self.loss = loss

    # -- validation ------------------------------------------------------------------------------
    def _check_params(self) -> None:
        if self.classifier_type not in CLASSIFIERS:
            raise ValueError(f"classifier_type must be one of {CLASSIFIERS}, not {self.classifier_type!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, not {self.loss!r}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, not {self.pooling!r}")
        if not 16 <= int(self.chunk_tokens) <= 512:
            raise ValueError("chunk_tokens must be between 16 and 512 (the model reads at most 512 tokens)")
        if not 0 <= int(self.chunk_overlap) < int(self.chunk_tokens) // 2:
            raise ValueError("chunk_overlap must be at least 0 and less than half of chunk_tokens")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, not {self.backend!r}")
        if int(self.epochs) < 0 or int(self.n_pairs) < 1 or int(self.max_triplets) < 1:
            raise ValueError("epochs must be >= 0, n_pairs >= 1 and max_triplets >= 1")

    # -- models ----------------------------------------------------------------------------------
    def _generic_model(self):
        return load_sentence_model(base_model_path(self.base_model))

    def _model(self, which: str):
        if which not in WHICH:
            raise ValueError(f"embeddings must be one of {WHICH}, not {which!r}")
        if which == "generic" or getattr(self, "model_", None) is None:
            return self._generic_model()
        return self.model_

    def _choose_backend(self) -> str:
        """The backend a fit uses: int8 ONNX when asked for or (``auto``) when onnxruntime is installed and
        the model is transformer + mean pooling; PyTorch otherwise."""
        if self.backend == "torch":
            return "torch"
        if onnx_encoder.available() and onnx_encoder.supports(self._generic_model()):
            return "onnx-int8"
        if self.backend == "onnx-int8":
            raise ValueError(
                "backend='onnx-int8' needs onnxruntime and onnx installed (pip install onnxruntime "
                "onnx) and a transformer + mean-pooling model; or use backend='auto' / 'torch'"
            )
        return "torch"

    def _backend_in_use(self) -> str:
        backend = getattr(self, "backend_", None)
        if backend is None:  # not fitted (e.g. generic embeddings of a new dataset): what a fit would use
            self.backend_ = backend = self._choose_backend()
        if backend == "onnx-int8" and not onnx_encoder.available():
            warnings.warn(
                "This model was trained with int8 ONNX embeddings but onnxruntime is not installed: "
                "using PyTorch (embeddings differ slightly). Fix: pip install onnxruntime onnx",
                stacklevel=3,
            )
            self.backend_ = backend = "torch"
        return backend

    def _onnx_path(self, which: str) -> Path:
        """The int8 graph of the generic (exported once into the cache folder) or the fine-tuned model."""
        if which == "generic" or getattr(self, "model_", None) is None:
            return generic_onnx_graph(self.base_model)
        current = getattr(self, "onnx_fine_tuned_", None)
        if current is None or not Path(current).exists():
            self._export_fine_tuned()
        return Path(self.onnx_fine_tuned_)

    def _export_fine_tuned(self) -> None:
        """Export the fine-tuned model to int8 ONNX in a temporary folder that lives as long as this object
        (``save`` copies the graph into the run)."""
        self._onnx_folder = tempfile.TemporaryDirectory(prefix="clab-onnx-ft-")  # removed with the object
        target = Path(self._onnx_folder.name) / onnx_encoder.FILE_NAME
        self.onnx_fine_tuned_ = onnx_encoder.export_int8(self.model_, target)

    # -- text, chunks, embeddings -----------------------------------------------------------------
    def texts_of(self, X: pd.DataFrame | list | str) -> list[str]:
        """The text of each row: the ``transcript`` column, or a lead row serialized to sentences; always valid
        UTF-8 (a lone surrogate, which the tokenizer refuses, made ``?``)."""
        return [valid_utf8(t) for t in self._raw_texts(X)]

    def _raw_texts(self, X: pd.DataFrame | list | str) -> list[str]:
        if isinstance(X, str):
            return [X]
        if isinstance(X, (list, tuple)):
            return [str(t) for t in X]
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"X must be a DataFrame (or a list of texts), not {type(X).__name__}")
        if TEXT_COLUMN in X.columns:
            return ["" if pd.isna(t) else str(t) for t in X[TEXT_COLUMN]]
        if getattr(self, "text_columns_", None):  # a lead table with text columns: those only, the rest encoded
            return table_texts(X, self.text_columns_)
        columns = getattr(self, "input_columns_", None)
        frame = X.reindex(columns=columns) if columns else X
        return frame_to_texts(frame)

    def _metadata_frame(self, X: pd.DataFrame) -> pd.DataFrame:
        if not isinstance(X, pd.DataFrame):
            return pd.DataFrame(index=range(len(X)))
        if getattr(self, "text_columns_", None):
            return X.reindex(columns=self.field_columns_)
        return X.drop(columns=[TEXT_COLUMN], errors="ignore")

    def _encodes_fields(self) -> bool:
        """Whether the head reads encoded fields beside the embedding: ``use_metadata``, or a lead table with text
        columns (its other columns, :mod:`engine.approaches._embed_table`)."""
        return bool(self.use_metadata or getattr(self, "text_columns_", None))

    def _field_label(self, column) -> str:
        return str(column) if getattr(self, "text_columns_", None) else f"[meta] {column}"

    def chunk(self, text: str, window: int | None = None, overlap: int | None = None) -> list[str]:
        """Split ``text`` into overlapping token windows (``window`` tokens incl. [CLS]/[SEP])."""
        return self._chunk_many([text], window, overlap)[0]

    def _chunk_many(self, texts: list[str], window: int | None = None, overlap: int | None = None) -> list[list[str]]:
        window = int(window or self.chunk_tokens)
        overlap = int(self.chunk_overlap if overlap is None else overlap)
        tokenizer = self._generic_model().tokenizer
        content = window - 2
        stride = max(content - overlap, 1)
        encoded = tokenizer(
            list(texts), add_special_tokens=False, return_offsets_mapping=True, truncation=False, verbose=False
        )
        out = []
        for text, offsets in zip(texts, encoded["offset_mapping"]):
            if len(offsets) <= content:
                out.append([text])
                continue
            chunks = []
            for start in range(0, len(offsets), stride):
                piece = offsets[start : start + content]
                chunks.append(text[piece[0][0] : piece[-1][1]])
                if start + content >= len(offsets):
                    break
            out.append(chunks)
        return out

    def _encode(
        self, chunks: list[str], which: str, callbacks: CallbackList | None = None, stage: str = "embed"
    ) -> np.ndarray:
        model = self._model(which)
        model.max_seq_length = int(self.chunk_tokens)
        # longest first over the whole set (not per slice): batches of similar length pad far less
        unique = sorted(dict.fromkeys(chunks), key=len, reverse=True)
        vectors = []
        step = 64
        if callbacks is not None:
            callbacks.on_train_begin(max(1, -(-len(unique) // step)), stage)
        onnx_path = self._onnx_path(which) if unique and self._backend_in_use() == "onnx-int8" else None
        for i in range(0, len(unique), step):
            if onnx_path is not None:
                vectors.append(
                    onnx_encoder.encode(
                        onnx_path, model.tokenizer, unique[i : i + step], max_length=int(self.chunk_tokens)
                    )
                )
            else:
                vectors.append(
                    model.encode(
                        unique[i : i + step],
                        batch_size=32,
                        convert_to_numpy=True,
                        normalize_embeddings=True,
                        show_progress_bar=False,
                    )
                )
            if callbacks is not None:
                callbacks.on_step_end(Progress(step=i // step + 1, total=-(-len(unique) // step), stage=stage))
        if callbacks is not None:
            callbacks.on_train_end(stage)
        table = np.vstack(vectors) if vectors else np.zeros((0, embedding_dimension(model)), np.float32)
        index = {c: j for j, c in enumerate(unique)}
        return table[[index[c] for c in chunks]] if chunks else table

    def embed(
        self, texts: list[str] | pd.DataFrame | str, which: str = "fine_tuned", callbacks: CallbackList | None = None
    ) -> np.ndarray:
        """Pooled, L2-normalised embedding of each text (chunks pooled by ``pooling``)."""
        texts = self.texts_of(texts)
        pieces = speaker_pieces(texts) if self.pooling == "speakers" else [[t] for t in texts]
        if not pieces:
            width = 2 if self.pooling == "speakers" else 1
            return np.zeros((0, embedding_dimension(self._model(which)) * width), np.float32)
        chunked = self._chunk_many([p for row in pieces for p in row])
        flat = [c for chunks in chunked for c in chunks]
        vectors = self._encode(flat, which, callbacks, stage=f"embed {which}")
        out, pos = [], 0
        for chunks in chunked:
            block = vectors[pos : pos + len(chunks)]
            pos += len(chunks)
            pooled = block.max(axis=0) if self.pooling == "max" else block.mean(axis=0)
            out.append(pooled / max(np.linalg.norm(pooled), 1e-12))
        return np.vstack(out).astype(np.float32).reshape(len(texts), -1)  # a row's pieces side by side

    # -- features and classifiers -------------------------------------------------------------------
    def _features(self, X, which: str, callbacks: CallbackList | None = None) -> np.ndarray:
        emb = self.embed(X, which, callbacks)
        if (
            self._encodes_fields()
            and getattr(self, "metadata_encoder_", None) is not None
            and len(self.metadata_encoder_.spec)
        ):
            return np.hstack([emb, self.metadata_encoder_.transform(self._metadata_frame(X))])
        return emb

    def _head_input(self, features: np.ndarray, X) -> np.ndarray | pd.DataFrame:
        """What the head reads: the features, and for the hybrid head the texts beside them."""
        if self.classifier_type != "hybrid":
            return features
        return hybrid_frame(features, self.texts_of(X))

    def _fit_head(self, features: np.ndarray, X, y: np.ndarray):
        try:
            return self._new_classifier(y).fit(self._head_input(features, X), y)
        except ValueError as exc:  # TfidfVectorizer: "empty vocabulary" / "no terms remain"
            if self.classifier_type == "hybrid" and ("vocabulary" in str(exc) or "no terms remain" in str(exc)):
                raise ValueError(
                    "classifier_type='hybrid' found no word (of two letters or more) in at least two training "
                    "texts, so its TF-IDF half has nothing to read. Fix: train on longer or more texts, or use "
                    "classifier_type='logistic'."
                ) from exc
            raise

    def _new_classifier(self, y: np.ndarray | None = None):
        """The classifier head; ``y`` (the training labels) caps the folds that choose C."""
        if self.classifier_type == "hybrid":
            return hybrid_head(y, seed=int(self.seed))
        if self.classifier_type == "xgboost":
            from xgboost import XGBClassifier

            return XGBClassifier(
                n_estimators=300,
                max_depth=3,
                learning_rate=0.05,
                subsample=0.8,
                colsample_bytree=0.5,
                min_child_weight=2,
                reg_lambda=1.0,
                random_state=self.seed,
                n_jobs=2,
                eval_metric="logloss",
                tree_method="hist",
            )
        from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        folds = 5 if y is None else min(5, int(np.bincount(np.asarray(y).astype(int), minlength=2).min()))
        if self.C is None and folds >= 2:
            head = LogisticRegressionCV(
                Cs=[0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0],
                cv=folds,
                scoring="roc_auc",
                max_iter=3000,
                random_state=self.seed,
            )
        else:  # a given C, or too few examples of a class to cross-validate one
            head = LogisticRegression(C=1.0 if self.C is None else float(self.C), max_iter=3000)
        return make_pipeline(StandardScaler(), head)

    # -- fine-tuning --------------------------------------------------------------------------------
    def training_windows(self, texts: list[str]) -> list[list[str]]:
        """Each text's windows of ``train_tokens`` (half the usual overlap): what fine-tuning reads."""
        return self._chunk_many(texts, window=int(self.train_tokens), overlap=int(self.chunk_overlap) // 2)

    def make_triplets(self, texts: list[str], y: np.ndarray) -> list[tuple[str, str, str]]:
        """(anchor, positive, negative) segments: ``n_pairs`` per text, at most ``max_triplets``."""
        rng = np.random.default_rng(self.seed)
        segments = self.training_windows(texts)
        y = np.asarray(y).astype(int)
        by_label = {label: np.flatnonzero(y == label) for label in (0, 1)}
        triplets = []
        for i in rng.permutation(len(texts)):
            same = by_label[y[i]][by_label[y[i]] != i]
            other = by_label[1 - y[i]]
            if len(same) == 0 or len(other) == 0:
                continue
            for _ in range(int(self.n_pairs)):
                a = segments[i][int(rng.integers(len(segments[i])))]
                p_doc = segments[int(rng.choice(same))]
                n_doc = segments[int(rng.choice(other))]
                triplets.append((a, p_doc[int(rng.integers(len(p_doc)))], n_doc[int(rng.integers(len(n_doc)))]))
        if len(triplets) > int(self.max_triplets):
            keep = rng.choice(len(triplets), int(self.max_triplets), replace=False)
            triplets = [triplets[k] for k in sorted(keep)]
        return triplets

    def make_segments(self, texts: list[str], y: np.ndarray) -> tuple[list[str], list[int]]:
        """Labelled segments for in-batch triplet mining, the texts of min(``n_pairs`` x texts,
        ``max_triplets``) triplets (three segments each): half of each class (each class's texts taken in
        turn, a random window of each), in a shuffled order."""
        rng = np.random.default_rng(self.seed)
        windows = self.training_windows(texts)
        y = np.asarray(y).astype(int)
        total = 3 * min(int(self.n_pairs) * len(texts), int(self.max_triplets))
        segments, labels = [], []
        for label in (0, 1):
            members = np.flatnonzero(y == label)
            order = np.concatenate([rng.permutation(members) for _ in range(-(-total // (2 * len(members))))])
            for i in order[: total // 2]:
                segments.append(windows[i][int(rng.integers(len(windows[i])))])
                labels.append(label)
        shuffle = rng.permutation(len(segments))
        return [segments[k] for k in shuffle], [labels[k] for k in shuffle]

    def _fine_tune(self, texts: list[str], y: np.ndarray, callbacks: CallbackList):
        import copy

        import torch
        from datasets import Dataset
        from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
        from sentence_transformers.sentence_transformer import losses
        from sentence_transformers.sentence_transformer.training_args import BatchSamplers

        torch.manual_seed(int(self.seed))
        model = copy.deepcopy(self._generic_model())
        model.max_seq_length = int(self.train_tokens)
        if self.loss == "triplet":
            triplets = self.make_triplets(texts, y)
            self.n_triplets_ = len(triplets)
            dataset = Dataset.from_dict(
                {
                    "anchor": [t[0] for t in triplets],
                    "positive": [t[1] for t in triplets],
                    "negative": [t[2] for t in triplets],
                }
            )
            loss = losses.TripletLoss(
                model, distance_metric=losses.TripletDistanceMetric.COSINE, triplet_margin=float(self.margin)
            )
            batch, sampler = int(self.batch_size), BatchSamplers.BATCH_SAMPLER
            callbacks.on_log(f"fine-tuning MiniLM on {len(triplets)} triplets x {self.epochs} epoch(s)")
        else:
            segments, labels = self.make_segments(texts, y)
            self.n_triplets_ = len(segments) // 3
            dataset = Dataset.from_dict({"sentence": segments, "label": labels})
            loss = losses.BatchAllTripletLoss(
                model,
                distance_metric=losses.BatchHardTripletLossDistanceFunction.cosine_distance,
                margin=float(self.margin),
            )
            batch = max(4, 3 * int(self.batch_size) + (3 * int(self.batch_size)) % 2)  # even, >= 4
            sampler = BatchSamplers.GROUP_BY_LABEL  # both classes in every batch
            callbacks.on_log(
                f"fine-tuning MiniLM on {len(segments)} labelled segments (in-batch triplets) x {self.epochs} epoch(s)"
            )
        with tempfile.TemporaryDirectory(prefix="clab-st-") as tmp:
            args = SentenceTransformerTrainingArguments(
                output_dir=tmp,
                num_train_epochs=int(self.epochs),
                per_device_train_batch_size=batch,
                learning_rate=float(self.learning_rate),
                warmup_steps=0.1,
                seed=int(self.seed),
                data_seed=int(self.seed),
                report_to="none",
                save_strategy="no",
                logging_steps=1,
                disable_tqdm=True,
                use_cpu=True,
                dataloader_num_workers=0,
                batch_sampler=sampler,
            )
            trainer = SentenceTransformerTrainer(
                model=model,
                args=args,
                train_dataset=dataset,
                loss=loss,
                callbacks=[_progress_adapter(callbacks, "fine-tune")],
            )
            try:  # progress goes through our callbacks; drop the Trainer's own printing of log dicts
                from transformers.trainer_callback import PrinterCallback, ProgressCallback

                trainer.remove_callback(PrinterCallback)
                trainer.remove_callback(ProgressCallback)
            except ImportError:  # pragma: no cover
                pass
            trainer.train()
            self.train_loss_ = [h["loss"] for h in trainer.state.log_history if "loss" in h]
        model.max_seq_length = int(self.chunk_tokens)
        model.eval()
        return model

    def _fit_plan(self, fine_tune: bool) -> dict[str, float]:
        """The fit's stages and their shares of its time, for the progress bar (:data:`FIT_SHARES`)."""
        kept = [w for w in WHICH if fine_tune or w == "generic"]
        stages = {"fine-tune": FIT_SHARES["fine-tune"]} if fine_tune else {}
        if fine_tune and self.backend_ == "onnx-int8":
            stages[EXPORT_STAGE] = FIT_SHARES["export"]
        for which in kept:
            stages[f"embed {which}"] = FIT_SHARES["embed"]
            stages[f"{HEAD_STAGE} ({which})"] = FIT_SHARES["head"]
        return stages

    # -- the contract ---------------------------------------------------------------------------------
    def _check_X(self, X) -> pd.DataFrame | list:
        """A frame of calls (a ``transcript`` column) or of leads, or a list of texts."""
        self._check_params()
        if isinstance(X, (list, tuple)):
            return list(X)
        return super()._check_X(X)

    def _fit(self, X: pd.DataFrame | list, y: np.ndarray, cbs: CallbackList) -> None:
        self.input_kind_ = "transcripts" if isinstance(X, pd.DataFrame) and TEXT_COLUMN in X.columns else "leads"
        self.input_columns_ = None if self.input_kind_ == "transcripts" else list(X.columns)
        leads = self.input_kind_ == "leads" and isinstance(X, pd.DataFrame)
        self.text_columns_, self.field_columns_ = split_columns(X, self.given_kinds()) if leads else ([], [])
        texts = self.texts_of(X)
        self.metadata_encoder_ = MetadataEncoder().fit(self._metadata_frame(X)) if self._encodes_fields() else None
        if self.text_columns_:
            encoded = list(dict.fromkeys(item["column"] for item in self.metadata_encoder_.spec))
            cbs.on_log(split_line(self.text_columns_, self.field_columns_, encoded))
        timings = {}
        self.backend_ = self._choose_backend()
        self.onnx_fine_tuned_ = None
        fine_tune = bool(self.fine_tune) and int(self.epochs) > 0
        cbs.on_plan(self._fit_plan(fine_tune))
        started = time.perf_counter()
        self.model_ = self._fine_tune(texts, y, cbs) if fine_tune else None
        timings["fine_tune_seconds"] = time.perf_counter() - started
        if self.model_ is not None and self.backend_ == "onnx-int8":
            started = time.perf_counter()
            cbs.on_train_begin(1, EXPORT_STAGE)
            self._export_fine_tuned()
            cbs.on_step_end(Progress(step=1, total=1, stage=EXPORT_STAGE))
            cbs.on_train_end(EXPORT_STAGE)
            timings["onnx_export_seconds"] = time.perf_counter() - started
        self.classifiers_ = {}
        self._fit_features = {}  # training features, kept in memory only (the bench reuses them)
        for which in WHICH:
            if which == "fine_tuned" and self.model_ is None:
                continue
            started = time.perf_counter()
            features = self._features(X, which, cbs)
            timings[f"embed_{which}_seconds"] = time.perf_counter() - started
            self._fit_features[which] = features
            started = time.perf_counter()
            cbs.on_train_begin(1, f"{HEAD_STAGE} ({which})")
            self.classifiers_[which] = self._fit_head(features, X, y)
            cbs.on_step_end(Progress(step=1, total=1, stage=f"{HEAD_STAGE} ({which})"))
            timings[f"head_{which}_seconds"] = time.perf_counter() - started
        self.timings_ = timings
        self.embedding_dim_ = embedding_dimension(self._generic_model())
        cbs.on_log("embeddings approach fitted")

    def variant_probas(self, X) -> dict[str, np.ndarray]:
        """The generic (not fine-tuned) embeddings' P(convert): the part the fine-tuning is judged against."""
        if "generic" not in getattr(self, "classifiers_", {}):
            return {}
        return {self.untrained_part: np.asarray(self.predict_proba(X, embeddings="generic"))[:, 1]}

    def predict_proba(self, X, embeddings: str = "fine_tuned") -> np.ndarray:
        self._check_fitted("classifiers_")
        if embeddings not in WHICH:
            raise ValueError(f"embeddings must be one of {WHICH}, not {embeddings!r}")
        which = embeddings if embeddings in self.classifiers_ else "generic"
        if isinstance(X, pd.DataFrame) and len(X) == 0:
            return np.zeros((0, 2))
        features = self._head_input(self._features(X, which), X)
        p = self.classifiers_[which].predict_proba(features)[:, 1].astype(np.float64)
        return np.column_stack([1 - p, p])

    # -- explanations -------------------------------------------------------------------------------------
    def _occlusion(self, X: pd.DataFrame, embeddings: str, max_sentences: int = 80) -> list[list[tuple[str, float]]]:
        texts = self.texts_of(X)
        variants, owners, units_per_row = [], [], []
        for r, text in enumerate(texts):
            units = split_sentences(text)
            if len(units) > max_sentences:  # merge neighbours so a very long call stays affordable
                size = -(-len(units) // max_sentences)
                units = [" ".join(units[i : i + size]) for i in range(0, len(units), size)]
            units_per_row.append(units)
            variants.append("\n".join(units))
            owners.append(r)
            for k in range(len(units)):
                variants.append("\n".join(units[:k] + units[k + 1 :]) or ".")
                owners.append(r)
        meta = self._metadata_frame(X).reset_index(drop=True) if isinstance(X, pd.DataFrame) else None
        frame = pd.DataFrame({TEXT_COLUMN: variants})
        if meta is not None and len(meta.columns):
            frame = pd.concat([frame, meta.iloc[owners].reset_index(drop=True)], axis=1)
        if self.input_kind_ == "leads":
            proba = self._proba_from_texts(variants, frame, embeddings)
        else:
            proba = self.predict_proba(frame, embeddings=embeddings)[:, 1]
        out, pos = [], 0
        for units in units_per_row:
            full = proba[pos]
            drops = proba[pos + 1 : pos + 1 + len(units)]
            pos += 1 + len(units)
            out.append([(u, float(full - d)) for u, d in zip(units, drops)])
        return out

    def _proba_from_texts(self, texts: list[str], meta: pd.DataFrame, embeddings: str) -> np.ndarray:
        which = embeddings if embeddings in self.classifiers_ else "generic"
        emb = self.embed(texts, which)
        if self._encodes_fields() and self.metadata_encoder_ is not None and len(self.metadata_encoder_.spec):
            emb = np.hstack([emb, self.metadata_encoder_.transform(meta.drop(columns=[TEXT_COLUMN], errors="ignore"))])
        return self.classifiers_[which].predict_proba(self._head_input(emb, texts))[:, 1]

    def _metadata_shap(self, X: pd.DataFrame, which: str) -> list[dict]:
        encoder = self.metadata_encoder_
        names = encoder.feature_names
        if not names:
            return []
        if self.classifier_type == "hybrid":  # no exact SHAP through the stack's two halves: occlusion
            return field_occlusion(self, X, which, self._field_label)
        features = self._features(X, which)
        clf = self.classifiers_[which]
        n_meta = len(names)
        if self.classifier_type == "xgboost":
            import xgboost

            contribs = clf.get_booster().predict(xgboost.DMatrix(features), pred_contribs=True)[:, :-1]
        else:
            scaler, head = clf[0], clf[-1]
            z = scaler.transform(features)
            contribs = z * head.coef_[0][None, :]  # linear SHAP (features are centred by the scaler)
        meta_contribs = contribs[:, -n_meta:]
        p = clf.predict_proba(features)[:, 1]
        slope = p * (1 - p)
        meta = self._metadata_frame(X).reset_index(drop=True)
        rows = []
        for r in range(len(X)):
            per_column: dict[str, float] = {}
            for (_feature, column), value in zip(names, meta_contribs[r]):
                per_column[column] = per_column.get(column, 0.0) + float(value)
            for column, value in per_column.items():
                cell = meta.at[r, column] if column in meta.columns else None
                rows.append(
                    {
                        "row": r,
                        "feature": self._field_label(column),
                        "value": "" if cell is None or (isinstance(cell, float) and np.isnan(cell)) else str(cell),
                        "contribution": value * slope[r],
                    }
                )
        return rows

    def explain(self, X: pd.DataFrame, embeddings: str = "fine_tuned", max_sentences: int = 80) -> pd.DataFrame:
        """Contribution table: one row per sentence (occlusion) plus metadata SHAP when ``use_metadata``."""
        self._check_fitted("classifiers_")
        rows = []
        for r, units in enumerate(self._occlusion(X, embeddings, max_sentences)):
            for unit, contribution in units:
                if not unit.strip():  # a row without text has no sentence to name
                    continue
                rows.append({"row": r, "feature": _truncate(unit), "value": unit, "contribution": contribution})
        if self._encodes_fields() and self.metadata_encoder_ is not None and isinstance(X, pd.DataFrame):
            which = embeddings if embeddings in self.classifiers_ else "generic"
            rows += self._metadata_shap(X, which)
        return contribution_frame(rows)

    # -- persistence ------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:

        self._check_fitted("classifiers_")
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        if self.model_ is not None:
            self.model_.save(str(path / "fine_tuned"), safe_serialization=True)
            if self._backend_in_use() == "onnx-int8":
                import shutil

                shutil.copyfile(self._onnx_path("fine_tuned"), path / "fine_tuned_int8.onnx")
        files = {}
        for which, clf in self.classifiers_.items():
            if self.classifier_type == "xgboost":
                name = f"classifier_{which}.json"
                clf.save_model(str(path / name))
            else:
                name = f"classifier_{which}.joblib"
                dump_signed(clf, path / name)
            files[which] = name
        state = {
            "classifiers": files,
            "input_kind": self.input_kind_,
            "input_columns": self.input_columns_,
            "metadata_encoder": self.metadata_encoder_.to_dict() if self.metadata_encoder_ else None,
            "embedding_dim": self.embedding_dim_,
            "timings": getattr(self, "timings_", {}),
            "n_triplets": getattr(self, "n_triplets_", 0),
            "train_loss": getattr(self, "train_loss_", []),
            "backend": getattr(self, "backend_", "torch"),
        }
        (path / "state.json").write_text(json.dumps(state, indent=2))
        split = {"embedded": self.text_columns_, "encoded": self.field_columns_} if self.text_columns_ else None
        self._write_params(path, fine_tuned_model="fine_tuned" if self.model_ is not None else None, text_split=split)

    @classmethod
    def load(cls, path: str | Path) -> EmbeddingApproach:
        path = Path(path)
        stored = cls._read_params(path)
        params = stored["params"]
        self = cls(**{k: v for k, v in params.items() if k in cls._param_names()})
        state = json.loads((path / "state.json").read_text())
        self.model_ = (
            load_sentence_model(str(path / "fine_tuned"), cached=False) if (path / "fine_tuned").exists() else None
        )
        self.classifiers_ = {}
        for which, name in state["classifiers"].items():
            if name.endswith(".json"):
                from xgboost import XGBClassifier

                clf = XGBClassifier()
                clf.load_model(str(path / name))
            else:
                clf = load_pickle(path, name)
            self.classifiers_[which] = clf
        self.input_kind_ = state["input_kind"]
        self.input_columns_ = state["input_columns"]
        split = stored.get("text_split") or {}  # runs saved before it (or without text columns): the whole row
        self.text_columns_, self.field_columns_ = list(split.get("embedded", [])), list(split.get("encoded", []))
        self.metadata_encoder_ = (
            MetadataEncoder.from_dict(state["metadata_encoder"]) if state["metadata_encoder"] else None
        )
        self.embedding_dim_ = state["embedding_dim"]
        self.timings_ = state.get("timings", {})
        self.n_triplets_ = state.get("n_triplets", 0)
        self.train_loss_ = state.get("train_loss", [])
        self.backend_ = state.get("backend", "torch")  # runs saved before the ONNX backend used PyTorch
        onnx_file = path / "fine_tuned_int8.onnx"
        self.onnx_fine_tuned_ = onnx_file if onnx_file.exists() else None
        self.classes_ = np.array([0, 1])
        return self
