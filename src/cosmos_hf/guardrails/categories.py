"""Safety taxonomies: the text categories an LLM safety classifier is asked about, and the video classes.

Text: the Aegis / LlamaGuard convention of coded categories ("O1".."O13") listed in the moderation prompt;
the model answers "safe" or "unsafe" plus the violated codes. The descriptions below are our own short
policy wording. Aegis was fine-tuned with the policy text of its model card: pass that text as
`SafetyCategory` objects to `LLMSafetyClassifier(categories=...)` to reproduce its training prompt exactly.

Video: the 7 classes of the reference's per-frame video content safety classifier, in its index order
(index 0 is the only safe class), so that its head weights map 1:1.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class SafetyCategory:
    code: str  # as the classifier writes it, e.g. "O4"
    name: str  # short machine name, e.g. "weapons"
    policy: str  # what the category forbids (inserted into the moderation prompt)


AEGIS_CATEGORIES = (
    SafetyCategory(
        "O1",
        "violence",
        "Content that plans, encourages or vividly depicts violence against people or animals.",
    ),
    SafetyCategory(
        "O2",
        "sexual",
        "Sexually explicit or erotic content, or encouragement of illegal sexual activity.",
    ),
    SafetyCategory(
        "O3",
        "criminal_planning",
        "Help with planning or committing crimes such as theft, kidnapping or fraud, or confessions of them.",
    ),
    SafetyCategory(
        "O4",
        "weapons",
        "Help with acquiring, making or using guns, explosives, chemical or biological weapons for harm.",
    ),
    SafetyCategory(
        "O5",
        "controlled_substances",
        "Encouraging or assisting the trafficking, making or use of illegal drugs and other regulated substances.",
    ),
    SafetyCategory(
        "O6",
        "self_harm",
        "Encouraging, romanticising or giving methods for suicide or self-harm.",
    ),
    SafetyCategory(
        "O7",
        "sexual_minor",
        "Any sexual content involving minors, grooming, or sexualisation of children.",
    ),
    SafetyCategory(
        "O8",
        "hate",
        "Hateful or demeaning content or slurs about people based on protected characteristics.",
    ),
    SafetyCategory(
        "O9",
        "privacy",
        "Sharing or seeking personal identifying information about private individuals.",
    ),
    SafetyCategory(
        "O10",
        "harassment",
        "Bullying, humiliation, or content meant to torment a specific person.",
    ),
    SafetyCategory(
        "O11",
        "threat",
        "Communicating an intent to harm, intimidate or coerce someone.",
    ),
    SafetyCategory(
        "O12",
        "profanity",
        "Swear words, curses and obscene language.",
    ),
    SafetyCategory(
        "O13",
        "needs_caution",
        "Ambiguous content that could lead to harm and should be handled with caution.",
    ),
)

# Per-frame video classifier classes (reference order; 0 = safe).
VIDEO_SAFETY_CLASSES = (
    "Safe",
    "Sexual_Content",
    "Violence",
    "Drugs",
    "Child_Abuse",
    "Hate_and_Harassment",
    "Self-Harm",
)
