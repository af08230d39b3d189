"""CV-MIM: view-disentangled pose embeddings by contrastive cross-view mutual information maximisation.

Zhao et al., "Learning View-Disentangled Human Pose Representation by Contrastive Cross-View Mutual Information
Maximization", CVPR 2021 (the full "DISENTANGLE" algorithm of google-research `poem/cv_mim`). For an anchor pose and a
positive (the same 3D pose from another camera, or a random re-projection of its 3D keypoints), E gives z_p (pose) and
z_v (view); fusion g = MOE 1/2 (z_p + z_v) | POE z_p * z_v | CAT [z_p, z_v]; S gives the local code from E's fc0.

    L_E   = [JSD(S(x_a), g_a) + JSD(S(x_p), g_p)]                       InfoMax (local-global)
          + w_view * 2 * JSD(z_p^a, z_p^p)                               cross-view MI
          + [prior(sigmoid([z_p, z_v]_a)) + prior(... _p)]                uniform prior (adversarial)
          + w_dis (CLUB_intra(z_p^a -> z_v^a) + CLUB_intra(p)) + 2 w_dis CLUB_inter(z_v^a -> z_v^p)
    L_est = -l_intra(a) - l_intra(p) - 2 l_inter                         CLUB estimators, maximum likelihood
    L_D   = discriminator loss with R1 penalty, on the anchor's and the positive's codes

Three optimizers (Adagrad 0.02) update three disjoint sets: E + S, the two CLUB estimators, the discriminator.
Deviation: the estimators and discriminator see stop-gradient codes from the same forward pass (the reference code
recomputes them; the values are the same).
"""

import dataclasses

import tensorflow as tf

from edge_ssl import tracing
from edge_ssl.data import pose
from edge_ssl.keras import keras
from edge_ssl.losses import distributed
from edge_ssl.losses import mutual_information as mi
from edge_ssl.methods import base, views
from edge_ssl.models import pose_encoder
from edge_ssl.train import optim

MODALITY = "pose"  # what the method learns from (base.MODALITIES)
FUSIONS = ("moe", "poe", "cat")
POSITIVES = ("camera", "reprojection", "mixed")


@dataclasses.dataclass(frozen=True)
class CvMimConfig(base.MethodConfig):
    method: str = "cv_mim"
    preset: str = "tiny"
    variant: str = "tiny"  # pose encoder: paper (1024 wide, 2 blocks) | small | tiny
    pose_dim: int = 32
    view_dim: int = 32
    fusion: str = "moe"
    positives: str = (
        "mixed"  # another camera's pose2d_pair, a random re-projection of pose3d, or either (p 0.5)
    )
    view_weight: float = 5.0
    disentangle_weight: float = 0.5
    prior_weight: float = 1.0
    r1_weight: float = 1.0
    dropout: float = 0.25
    learning_rate: float = 0.02
    global_batch_size: int = 256

    def __post_init__(self):
        super().__post_init__()
        checks = (
            (
                self.variant in pose_encoder.VARIANTS,
                f"variant must be one of {sorted(pose_encoder.VARIANTS)}",
            ),
            (self.fusion in FUSIONS, f"fusion must be one of {FUSIONS}"),
            (self.positives in POSITIVES, f"positives must be one of {POSITIVES}"),
            (self.pose_dim >= 1 and self.view_dim >= 1, "pose_dim and view_dim must be >= 1"),
            (
                self.fusion == "cat" or self.pose_dim == self.view_dim,
                "moe and poe fusion need pose_dim == view_dim",
            ),
            (self.learning_rate > 0, "learning_rate must be positive"),
            (
                self.global_batch_size >= 2,
                "global_batch_size must be >= 2 (the estimators need negatives)",
            ),
        )
        for ok, message in checks:
            if not ok:
                raise ValueError(f"cv_mim config: {message}")


class CvMim(base.Method):
    """E (pose encoder) + S, CLUB estimators and the prior discriminator; `backbone` is E's normalised z_p."""

    name = "cv_mim"
    modality = MODALITY
    input_keys = ("pose2d", "pose2d_pair", "pose3d", "view")

    def __init__(self, config: CvMimConfig):
        super().__init__(config)
        c = config
        dim = c.pose_dim + c.view_dim
        self.encoder = pose_encoder.pose_encoder(c.variant, dim, c.dropout, name="pose_encoder")
        local_dim = dim if c.fusion == "cat" else c.pose_dim
        self.sub_encoder = pose_encoder.sub_encoder(
            c.variant, local_dim, c.dropout, name="sub_encoder"
        )
        self.intra = pose_encoder.club_estimator(c.pose_dim, name="club_intra")
        self.inter = pose_encoder.club_estimator(c.view_dim, name="club_inter")
        self.discriminator = pose_encoder.prior_discriminator(dim, name="discriminator")
        self._backbone = pose_encoder.pose_embedding_model(
            self.encoder, c.pose_dim, name="cv_mim_backbone"
        )
        self._optimizers = {
            name: optim.loss_scaled(keras.optimizers.Adagrad(c.learning_rate), c.precision)
            for name in ("encoder", "estimators", "discriminator")
        }

    @property
    def encoders(self):
        return {
            "encoder": self.encoder,
            "sub_encoder": self.sub_encoder,
            "club_intra": self.intra,
            "club_inter": self.inter,
            "discriminator": self.discriminator,
        }

    def teacher_views(self) -> dict[str, views.View]:
        """z_p of the window's 2D keypoints, averaged over frames: a pose teacher (`views.pose_mean`)."""
        return {"visual": views.pose_mean(self.backbone)}

    @property
    def backbone(self):
        return self._backbone

    @property
    def optimizers(self):
        return self._optimizers

    def variable_groups(self) -> dict[str, list[tf.Variable]]:
        """The three disjoint variable sets, keyed like `optimizers`."""
        return {
            "encoder": self.encoder.trainable_variables + self.sub_encoder.trainable_variables,
            "estimators": self.intra.trainable_variables + self.inter.trainable_variables,
            "discriminator": self.discriminator.trainable_variables,
        }

    @tracing.as_written
    def prepare(self, example, seed):
        """One frame of the clip: the anchor pose, its cross-view positive, a uniform prior sample, the view."""
        seeds = tf.unstack(tf.random.experimental.stateless_split(seed, 4))
        frames = tf.shape(example["pose2d"])[0]
        t = tf.random.stateless_uniform([], seeds[0], 0, frames, dtype=tf.int32)
        anchor = pose.normalize(example["pose2d"][t])
        camera = pose.normalize(example["pose2d_pair"][t])
        projected = pose.random_reprojection(example["pose3d"][t], seeds[1])
        if self.config.positives == "camera":
            positive = camera
        elif self.config.positives == "reprojection":
            positive = projected
        else:
            positive = tf.where(tf.random.stateless_uniform([], seeds[2]) < 0.5, camera, projected)
        # The prior's "real" sample is drawn here, from the example's seed, so a step is a function of its batch.
        real = tf.random.stateless_uniform([self.config.pose_dim + self.config.view_dim], seeds[3])
        return {
            "anchor": anchor,
            "positive": positive,
            "prior_sample": real,
            "view": tf.cast(example["view"], tf.float32),
        }

    def _split(self, embedding):
        return embedding[:, : self.config.pose_dim], embedding[:, self.config.pose_dim :]

    def _fuse(self, z_p, z_v):
        if self.config.fusion == "moe":
            return 0.5 * (z_p + z_v)
        if self.config.fusion == "poe":
            return z_p * z_v
        return tf.concat([z_p, z_v], axis=-1)

    def losses(self, batch, global_batch_size, training=True):
        """Named losses (each this replica's share of its global value): the encoder's terms and totals, the
        estimators' and the discriminator's."""
        c = self.config
        gm = lambda v: distributed.global_mean(v, global_batch_size)  # noqa: E731
        codes = {}
        for side in ("anchor", "positive"):
            out = optim.f32(self.encoder(batch[side], training=training))
            z_p, z_v = self._split(out["embedding"])
            local = optim.f32(self.sub_encoder(out["fc0"], training=training))
            codes[side] = (z_p, z_v, local, out["embedding"])
        (zp_a, zv_a, local_a, emb_a), (zp_p, zv_p, local_p, emb_p) = (
            codes["anchor"],
            codes["positive"],
        )

        rep = gm(mi.jsd_contrastive(local_a, self._fuse(zp_a, zv_a))) + gm(
            mi.jsd_contrastive(local_p, self._fuse(zp_p, zv_p))
        )
        cross_view = c.view_weight * 2.0 * gm(mi.jsd_contrastive(zp_a, zp_p))
        fake_a, fake_p = tf.sigmoid(emb_a), tf.sigmoid(emb_p)
        prior = c.prior_weight * (
            gm(mi.prior_loss(lambda x: optim.f32(self.discriminator(x, training=training)), fake_a))
            + gm(
                mi.prior_loss(lambda x: optim.f32(self.discriminator(x, training=training)), fake_p)
            )
        )
        q_a, q_p = optim.f32(self.intra(zp_a, training=training)), optim.f32(
            self.intra(zp_p, training=training)
        )
        q_x = optim.f32(self.inter(zv_a, training=training))

        def club(y, q):
            return mi.club_upper_bound(y, q["mu"], q["logvar"], global_batch_size)

        disentangle = c.disentangle_weight * (
            club(zv_a, q_a) + club(zv_p, q_p)
        ) + 2.0 * c.disentangle_weight * club(zv_p, q_x)
        encoder_total = rep + cross_view + prior + disentangle

        # The estimators fit q on codes the encoder cannot move through them.
        sg = tf.stop_gradient
        e_a, e_p = optim.f32(self.intra(sg(zp_a), training=training)), optim.f32(
            self.intra(sg(zp_p), training=training)
        )
        e_x = optim.f32(self.inter(sg(zv_a), training=training))
        ll = mi.gaussian_log_likelihood
        estimators = gm(
            -ll(sg(zv_a), e_a["mu"], e_a["logvar"])
            - ll(sg(zv_p), e_p["mu"], e_p["logvar"])
            - 2.0 * ll(sg(zv_p), e_x["mu"], e_x["logvar"])
        )
        real = batch["prior_sample"]
        disc = lambda x: optim.f32(self.discriminator(x, training=training))  # noqa: E731
        discriminator = gm(mi.discriminator_loss(disc, real, fake_a, c.r1_weight)) + gm(
            mi.discriminator_loss(disc, real, fake_p, c.r1_weight)
        )
        return {
            "infomax": rep,
            "cross_view": cross_view,
            "prior": prior,
            "disentangle": disentangle,
            "total": encoder_total,
            "estimators": estimators,
            "discriminator": discriminator,
        }

    @tracing.as_written
    def train_step(self, batch, global_batch_size):
        groups = self.variable_groups()
        with tf.GradientTape(persistent=True) as tape:
            losses = self.losses(batch, global_batch_size)
        for name, loss_name in (
            ("encoder", "total"),
            ("estimators", "estimators"),
            ("discriminator", "discriminator"),
        ):
            optim.apply_gradients(
                self._optimizers[name], losses[loss_name], tape, groups[name], self.config.clip_norm
            )
        del tape
        return losses


def build(config: CvMimConfig) -> CvMim:
    """CV-MIM from its config (see edge_ssl/configs/cv_mim_*.py)."""
    with optim.precision_policy(config.precision):
        return CvMim(config)
