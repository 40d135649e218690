"""Synthetic sales-call transcripts: the embedded demo for the transcript approaches.

NOT REAL DATA. Every call is composed by :func:`demo_transcripts` from paraphrase pools, one pool per
conversational *move* and quality level:

==============  ==========================================================  =================
move            levels (effect on the latent score)                         who speaks
==============  ==========================================================  =================
needs           clear need stated (+1.0), vague (-0.3), no real need (-1.0)  customer (+agent)
pitch           tailored to the need (+0.6), generic feature list (-0.4)     agent
objection       none (0), raised and handled (+0.7), raised, unresolved      both
                (-1.2)
pricing         discussed and accepted (+0.9), discussed and resisted        both
                (-0.9), dodged (-0.3)
next steps      concrete meeting booked (+1.4), vague (-0.4), declined       both
                (-1.4)
==============  ==========================================================  =================

plus neutral moves (opening, small talk, closing) and small metadata effects (company size, agent).
The outcome is ``label = 1`` when ``sum(move effects) + metadata effect + Normal(0, 0.9) > THRESHOLD``:
it depends on several moves at once plus noise, so no single phrase or keyword decides it, and words
like "price", "next step" or "meeting" occur in calls of both outcomes.

Each move's paraphrases are split into two disjoint pools: ``phrase_pool="train"`` (about two thirds)
and ``phrase_pool="heldout"`` (the rest). A model trained on train-pool calls and tested on held-out
calls must generalise to wordings it never saw: the honest test that it learned what is said, not our
templates. ``phrase_pool="all"`` mixes both.

Every record carries ``metadata["source"] = "synthetic demo"``; show :data:`DEMO_NOTICE` wherever
the demo is displayed.
"""

from __future__ import annotations

import datetime as _dt

import numpy as np

__all__ = ["DEMO_NOTICE", "demo_transcripts", "THRESHOLD", "MOVE_EFFECTS", "PHRASE_POOLS"]

DEMO_NOTICE = (
    "Synthetic demo transcripts: generated sales calls, not real customers. Outcomes follow a "
    "documented latent model (engine/data/demo_transcripts.py)."
)

#: Latent score threshold; about 40 % of calls convert.
THRESHOLD = 0.8
NOISE_SD = 0.9

MOVE_EFFECTS: dict[str, dict[str, float]] = {
    "needs": {"clear": 1.0, "vague": -0.3, "none": -1.0},
    "pitch": {"tailored": 0.6, "generic": -0.4},
    "objection": {"none": 0.0, "handled": 0.7, "unresolved": -1.2},
    "pricing": {"accepted": 0.9, "resisted": -0.9, "dodged": -0.3},
    "next": {"booked": 1.4, "vague": -0.4, "declined": -1.4},
}
LEVEL_PROBS: dict[str, list[float]] = {
    "needs": [0.45, 0.35, 0.20],
    "pitch": [0.5, 0.5],
    "objection": [0.3, 0.4, 0.3],
    "pricing": [0.4, 0.35, 0.25],
    "next": [0.4, 0.35, 0.25],
}
SIZE_EFFECT = {"1-10": -0.3, "11-50": 0.0, "51-200": 0.2, "201-1000": 0.1, "1000+": -0.2}

INDUSTRIES = {
    "healthcare": (
        ["patient scheduling software", "clinical analytics platform"],
        ["missed appointments", "manual insurance checks", "slow patient intake"],
    ),
    "retail": (
        ["inventory management system", "point-of-sale suite"],
        ["stock-outs in our stores", "reconciling sales across shops", "slow checkout lines"],
    ),
    "manufacturing": (
        ["predictive maintenance platform", "production planning software"],
        ["unplanned machine downtime", "spreadsheets for shift planning", "scrap rates"],
    ),
    "finance": (
        ["compliance reporting tool", "expense management platform"],
        ["month-end close taking two weeks", "audit preparation", "chasing receipts"],
    ),
    "education": (
        ["learning management system", "student enrolment CRM"],
        ["tracking course completion", "enrolment follow-ups falling through", "grading workload"],
    ),
    "logistics": (
        ["fleet tracking platform", "route optimisation software"],
        ["fuel costs", "late deliveries", "drivers calling in for directions"],
    ),
    "real estate": (
        ["property management software", "lead management CRM"],
        ["tenant requests getting lost", "slow follow-up on enquiries", "rent collection"],
    ),
    "hospitality": (
        ["booking engine", "guest messaging platform"],
        ["no-shows", "double bookings", "front desk overload"],
    ),
}
SIZES = list(SIZE_EFFECT)
SIZE_PROBS = [0.2, 0.3, 0.25, 0.15, 0.1]
AGENTS = [f"agent_{i:02d}" for i in range(1, 13)]
AGENT_NAMES = ["Maya", "Tom", "Priya", "Lucas", "Ana", "Ben", "Chloe", "Omar", "Sofia", "Daniel", "Ines", "Kenji"]
CUSTOMER_NAMES = [
    "Laura",
    "Mark",
    "Fatima",
    "Jon",
    "Elena",
    "Raj",
    "Grace",
    "Pedro",
    "Hannah",
    "Victor",
    "Nadia",
    "Sam",
    "Olivia",
    "Hugo",
    "Mei",
    "Carlos",
]
COMPANY_STEMS = ["North", "Blue", "Summit", "Harbor", "Cedar", "Bright", "Iron", "Silver", "Oak", "River"]
COMPANY_TAILS = ["Group", "Partners", "Works", "Labs", "Co", "Holdings", "Systems", "Collective"]
COMPETITORS = ["Acme", "Vendora", "Stackly", "Corebridge", "Nimbus"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]

# Paraphrase pools: each entry is one paraphrase of the move, as turns "A:" (agent) / "C:" (customer).
# Entries at positions 2, 5, 8, ... form the held-out pool; the others the train pool.
PHRASE_POOLS: dict[str, list[str]] = {
    "opening": [
        "A: Hi {customer}, this is {agent} from the {product} team. Thanks for taking the time today.|"
        "C: Hi {agent}, no problem, I have about thirty minutes.",
        "A: Good morning {customer}, {agent} here. Is now still a good time?|C: Yes, go ahead.",
        "A: Hello {customer}, it's {agent}. I appreciate you joining the call.|C: Sure, happy to chat.",
        "A: Hey {customer}, {agent} calling about the {product}. Did I catch you at an okay moment?|"
        "C: You did, I just got out of a meeting.",
        "A: Hi, is this {customer} at {company}?|C: Speaking.|A: Great, {agent} here, we had this call booked.",
        "A: Thanks for hopping on, {customer}. I'm {agent}.|C: Hello, nice to meet you.",
    ],
    "smalltalk": [
        "C: Sorry, the connection here is a bit patchy.|A: No worries, I can hear you fine.",
        "A: How has your week been so far?|C: Busy, we had a team offsite on Monday.",
        "C: Give me a second, let me close my door.|A: Of course, take your time.",
        "A: I saw {company} was at the trade show last month.|C: Yes, a few of us went, it was crowded.",
        "C: Is it raining where you are too?|A: All day, unfortunately.",
        "A: Are you based in the main office?|C: Mostly, I work from home on Fridays.",
        "C: I only have my phone with me, so I can't see slides.|A: That's fine, I'll just talk it through.",
        "A: Before we start, can you hear me clearly?|C: Loud and clear.",
        "C: We just moved offices, so things are a little chaotic.|A: I can imagine, moves are never easy.",
    ],
    "needs:clear": [
        "A: What made you reach out?|C: Honestly, {pain} is costing us. We want to fix it this quarter, "
        "and I own the budget for it.",
        "A: Tell me a bit about what's going on.|C: Our biggest problem is {pain}. My team loses hours every "
        "week and leadership asked me to find a tool.",
        "A: What would success look like for you?|C: If we could cut {pain} in half, that alone pays for it. "
        "We've already tried fixing it in-house and it didn't work.",
        "A: Where does it hurt the most today?|C: {pain}, without a doubt. We have a hard deadline to sort it "
        "before the busy season.",
        "C: I'll be direct: {pain} is our top priority this year and we've set money aside for a solution.",
        "A: Walk me through your current process.|C: It's mostly manual, and {pain} keeps getting worse as we "
        "grow. We need something in place within two months.",
    ],
    "needs:vague": [
        "A: What made you reach out?|C: I'm not totally sure yet, we're just looking at what's out there.",
        "A: What are you hoping to improve?|C: Hard to say. Maybe {pain}, maybe not, we haven't really looked into it.",
        "C: My manager asked me to take a few calls, so I'm gathering information for now.",
        "A: What's the main challenge right now?|C: Nothing urgent. Things are okay, I guess we could always "
        "be a bit more efficient.",
        "A: Is there a specific problem behind this?|C: Not one thing in particular, I'm mostly curious what a "
        "{product} does.",
        "C: We're early. Someone mentioned your name, so I thought I'd listen and see.",
    ],
    "needs:none": [
        "A: What made you reach out?|C: To be honest, we're happy with what we have. I only signed up for the webinar.",
        "C: I should say up front, we renewed with another provider last month, so there's no project here.",
        "A: Any pain around {pain}?|C: Not really, that's been solved for years. I don't see a gap.",
        "C: I think the form was filled in by an intern. We don't have a need for a {product} at the moment.",
        "A: What would you want to change?|C: Nothing, really. Our setup works and nobody is asking for a new tool.",
        "C: I'm not the right person for this, and as far as I know we aren't looking for anything.",
    ],
    "pitch:tailored": [
        "A: That's exactly what we solve. For {pain}, customers in {industry} typically see results in the first "
        "month, because the {product} automates the step where things slip.|C: That would help us a lot.",
        "A: Given what you said about {pain}, let me show you just the part that addresses it.|C: Great, that's "
        "the bit I care about.",
        "A: A {industry} client your size had the same issue with {pain}; they cut it by forty percent.|"
        "C: Interesting, that's very close to our situation.",
        "A: So if I understood you, {pain} is the priority. Here is how we'd set it up for {company}.|"
        "C: Yes, that matches what we need.",
        "A: Let me connect this to your goal: the {product} flags the cases behind {pain} before they happen.|"
        "C: Okay, that's useful.",
        "A: For a team like yours, I'd start with the module built for {pain} and skip the rest.|"
        "C: I like that you're keeping it focused.",
    ],
    "pitch:generic": [
        "A: So the {product} has dashboards, reports, integrations, mobile apps, and a lot more. Let me go "
        "through the feature list.|C: Okay.",
        "A: We're the leading platform, trusted by thousands of companies, with over two hundred features.|C: Right.",
        "A: Let me share our standard deck, it covers everything the {product} can do.|C: Sure, go ahead.",
        "A: There's a lot to cover, so I'll just walk through all the modules one by one.|C: Mm-hm.",
        "A: We have AI, automation, analytics, you name it. Most people love the reporting.|C: I see.",
        "A: Our product does pretty much everything, it's very flexible.|C: Okay, sounds broad.",
    ],
    "objection:raise": [
        "C: My worry is that we tried a similar tool two years ago and nobody used it.",
        "C: We're also talking to {competitor}, and they seem cheaper.",
        "C: I'm not sure this works with our existing systems.",
        "C: Timing is tough, we're in the middle of a reorganisation.",
        "C: I'd need to convince my finance director, and she's very sceptical of new software.",
        "C: How long does implementation take? We don't have IT people to spare.",
    ],
    "objection:handled": [
        "A: That's a fair concern. We include onboarding and a named specialist for the first ninety days, and I "
        "can put you in touch with a reference customer.|C: Okay, that actually addresses it.",
        "A: Good question. We have a ready connector for that, and setup takes about a week; I'll send the "
        "technical sheet.|C: Great, that takes that worry off the table.",
        "A: I hear you. Let me prepare a one-page business case your director can review, with the numbers from "
        "similar companies.|C: That would make my life much easier.",
        "A: Understood. Many teams start with a small pilot, so it fits around other projects.|C: A pilot could "
        "work for us, yes.",
        "A: Compared with {competitor}, the difference is support and the time to value; here's what that means "
        "for you.|C: Fair point, that's a real difference.",
        "A: We handle the implementation for you, so your IT team only spends a couple of hours.|C: Oh, that "
        "changes things.",
    ],
    "objection:unresolved": [
        "A: Well, every tool has that risk, I guess.|C: Hmm, that doesn't really reassure me.",
        "A: I'd have to check on that and get back to you.|C: Okay, but that's a pretty important point for us.",
        "A: I don't really know how they compare, to be honest.|C: I see. That leaves me where I started.",
        "A: That's something you'd need to work out on your side.|C: Right, so it's still an open question.",
        "A: Let's not worry about that for now.|C: It's kind of a big worry, though.",
        "A: Most customers figure it out eventually.|C: I'm not convinced, that was the main thing holding us back.",
    ],
    "pricing:accepted": [
        "C: What does it cost?|A: For {seats} users it's about {price} a year, onboarding included.|C: That's "
        "within what we planned.",
        "A: On pricing, you'd be looking at {price} annually.|C: Reasonable, that fits our budget.",
        "C: Let's talk numbers.|A: It's {price} per year for your size.|C: Okay, I can work with that.",
        "A: The quote would be around {price} for the year.|C: That's less than I expected, good.",
        "C: And the price?|A: {price} a year, billed quarterly if you prefer.|C: Quarterly billing helps, that works.",
        "A: Budget-wise we'd be at {price}.|C: Fine, that's in line with what finance approved.",
    ],
    "pricing:resisted": [
        "C: What does it cost?|A: For {seats} users it's about {price} a year.|C: Oof, that's well above what "
        "we can spend.",
        "A: On pricing, you'd be looking at {price} annually.|C: That's a lot more than we hoped, honestly.",
        "C: Let's talk numbers.|A: It's {price} per year.|C: I don't think I can get that approved.",
        "A: The quote would be around {price} for the year.|C: That's steep for a company our size.",
        "C: And the price?|A: {price} a year.|C: Hmm, {competitor} quoted us half of that.",
        "A: Budget-wise we'd be at {price}.|C: We don't have that kind of budget this year.",
    ],
    "pricing:dodged": [
        "C: Roughly what does it cost?|A: It depends, let's leave pricing for another time.",
        "C: Can you give me a ballpark price?|A: I'd rather not quote anything yet.",
        "A: We can talk about pricing later, it varies a lot.|C: Okay, if you say so.",
        "C: Is there a price list?|A: Not really, every deal is custom.",
        "C: What would this run us?|A: Hard to say without more information.",
        "A: I'll skip the commercial side for today.|C: Alright.",
    ],
    "next:booked": [
        "A: Shall we set up a demo with your team on {day} at ten?|C: Yes, {day} works. Send the invite and "
        "I'll bring our operations lead.",
        "A: What would be a good next step?|C: Let's do the pilot. Can you send the contract by {day}?|"
        "A: Absolutely, I'll have it to you by then.",
        "C: I'd like to move forward. Can we book a call with my director on {day}?|A: Done, I'll send the "
        "calendar invite now.",
        "A: I'll send a proposal today; can we review it together on {day}?|C: Yes, put it in my calendar, "
        "I'll block the hour.",
        "C: Let's get the technical team on a call {day} to start the setup.|A: Perfect, I'll confirm the "
        "time in writing.",
        "A: Can I book the onboarding kickoff for {day}?|C: Please do, we want to start as soon as possible.",
    ],
    "next:vague": [
        "A: What would be a good next step?|C: Send me some material and I'll have a look when I can.",
        "A: Shall we set up a demo with your team?|C: Maybe, let me check with people and get back to you "
        "at some point.",
        "C: I'll think about it and reach out if it makes sense.|A: Sure, no pressure.",
        "A: Can we schedule a follow-up?|C: Let's leave it open for now, things are busy.",
        "C: Could you email me a brochure? I'll circulate it internally.|A: Sure, I'll send it over.",
        "A: Should I check in next month?|C: You can try, I can't promise anything.",
    ],
    "next:declined": [
        "A: What would be a good next step?|C: I don't think there is one, to be honest. We'll pass.",
        "A: Shall we set up a demo with your team on {day}?|C: No, thanks. It's not a fit for us right now.",
        "C: I appreciate the time, but we won't be moving forward.|A: Understood, thanks for being clear.",
        "A: Can I book a follow-up meeting?|C: Please don't, we're not interested.",
        "C: Let's not schedule anything. We'll stay with what we have.|A: Okay, I understand.",
        "A: Would a proposal help?|C: No, I'd rather you didn't send one. It's a no from us.",
    ],
    "closing": [
        "A: Thanks again for your time, {customer}.|C: Thank you, bye.",
        "A: Have a good rest of your day.|C: You too, take care.",
        "C: Alright, I need to jump to another call.|A: Of course, thanks {customer}.",
        "A: I'll let you go. Thanks for the conversation.|C: Thanks, {agent}.",
        "C: Thanks for walking me through this.|A: My pleasure, talk soon.",
        "A: Appreciate it, {customer}. Enjoy your afternoon.|C: Cheers.",
    ],
}

_MOVE_KEYS = {
    "needs": ["clear", "vague", "none"],
    "pitch": ["tailored", "generic"],
    "objection": ["none", "handled", "unresolved"],
    "pricing": ["accepted", "resisted", "dodged"],
    "next": ["booked", "vague", "declined"],
}


def _pool(key: str, phrase_pool: str) -> list[str]:
    entries = PHRASE_POOLS[key]
    if phrase_pool == "all":
        return entries
    heldout = [e for i, e in enumerate(entries) if i % 3 == 2]
    return heldout if phrase_pool == "heldout" else [e for i, e in enumerate(entries) if i % 3 != 2]


def _pick(rng: np.random.Generator, key: str, phrase_pool: str) -> str:
    pool = _pool(key, phrase_pool)
    return pool[int(rng.integers(len(pool)))]


def _render(turns: str, slots: dict[str, str]) -> list[str]:
    lines = []
    for turn in turns.split("|"):
        speaker, text = turn.split(":", 1)
        who = "Agent" if speaker.strip() == "A" else "Customer"
        lines.append(f"{who}: {text.strip().format(**slots)}")
    return lines


def demo_transcripts(
    n: int = 400, seed: int = 0, phrase_pool: str = "train", positive_rate: float | None = None
) -> list[dict]:
    """``n`` synthetic sales calls as ``{"transcript", "label", "metadata"}`` records (deterministic).

    ``phrase_pool``: ``"train"`` (default), ``"heldout"`` (disjoint paraphrases, for honest tests)
    or ``"all"``. ``positive_rate`` is ignored unless given, in which case the threshold is moved to
    hit it on this sample (for experiments; the default keeps the fixed, documented threshold).
    """
    if phrase_pool not in ("train", "heldout", "all"):
        raise ValueError(f"phrase_pool must be 'train', 'heldout' or 'all', not {phrase_pool!r}")
    if n < 1:
        raise ValueError("n must be at least 1")
    rng = np.random.default_rng(seed)
    industries = list(INDUSTRIES)
    agent_skill = {a: float(s) for a, s in zip(AGENTS, np.random.default_rng(1234).normal(0, 0.2, len(AGENTS)))}
    base_time = _dt.datetime(2025, 3, 3, 8, 0)
    records, latents = [], []
    for _ in range(n):
        industry = industries[int(rng.integers(len(industries)))]
        products, pains = INDUSTRIES[industry]
        product = products[int(rng.integers(len(products)))]
        size = SIZES[int(rng.choice(len(SIZES), p=SIZE_PROBS))]
        agent_id = AGENTS[int(rng.integers(len(AGENTS)))]
        seats = int(
            {"1-10": 5, "11-50": 25, "51-200": 80, "201-1000": 300, "1000+": 1200}[size] * rng.uniform(0.6, 1.4)
        )
        price = int(round(seats * rng.uniform(150, 400), -2))
        slots = {
            "agent": AGENT_NAMES[AGENTS.index(agent_id)],
            "customer": CUSTOMER_NAMES[int(rng.integers(len(CUSTOMER_NAMES)))],
            "company": f"{COMPANY_STEMS[int(rng.integers(10))]} {COMPANY_TAILS[int(rng.integers(8))]}",
            "product": product,
            "industry": industry,
            "pain": pains[int(rng.integers(len(pains)))],
            "competitor": COMPETITORS[int(rng.integers(len(COMPETITORS)))],
            "seats": str(seats),
            "price": f"${price:,}",
            "day": DAYS[int(rng.integers(len(DAYS)))],
        }
        levels = {
            move: options[int(rng.choice(len(options), p=LEVEL_PROBS[move]))] for move, options in _MOVE_KEYS.items()
        }
        latent = sum(MOVE_EFFECTS[m][lvl] for m, lvl in levels.items())
        latent += SIZE_EFFECT[size] + agent_skill[agent_id] + rng.normal(0, NOISE_SD)

        lines = _render(_pick(rng, "opening", phrase_pool), slots)
        for _ in range(int(rng.integers(0, 3))):
            lines += _render(_pick(rng, "smalltalk", phrase_pool), slots)
        lines += _render(_pick(rng, f"needs:{levels['needs']}", phrase_pool), slots)
        lines += _render(_pick(rng, f"pitch:{levels['pitch']}", phrase_pool), slots)
        middle = []
        if levels["objection"] != "none":
            middle.append(
                _render(_pick(rng, "objection:raise", phrase_pool), slots)
                + _render(_pick(rng, f"objection:{levels['objection']}", phrase_pool), slots)
            )
        middle.append(_render(_pick(rng, f"pricing:{levels['pricing']}", phrase_pool), slots))
        if rng.random() < 0.5:
            middle.reverse()
        for block in middle:
            lines += block
        for _ in range(int(rng.integers(0, 3))):
            lines += _render(_pick(rng, "smalltalk", phrase_pool), slots)
        lines += _render(_pick(rng, f"next:{levels['next']}", phrase_pool), slots)
        lines += _render(_pick(rng, "closing", phrase_pool), slots)
        transcript = "\n".join(lines)

        words = len(transcript.split())
        call_time = base_time + _dt.timedelta(
            days=int(rng.integers(0, 180)), hours=int(rng.integers(0, 10)), minutes=int(rng.integers(0, 4)) * 15
        )
        records.append(
            {
                "transcript": transcript,
                "label": None,
                "metadata": {
                    "industry": industry,
                    "product": product,
                    "duration": int(words * 2.4 * rng.uniform(2.5, 4.0)),  # seconds; longer than the text alone
                    "call_time": call_time.isoformat(timespec="minutes"),
                    "agent_id": agent_id,
                    "customer_company_size": size,
                    "source": "synthetic demo",
                    "phrase_pool": phrase_pool,
                },
            }
        )
        latents.append(latent)
    threshold = THRESHOLD if positive_rate is None else float(np.quantile(latents, 1 - positive_rate))
    for record, latent in zip(records, latents):
        record["label"] = int(latent > threshold)
    return records


# -- long two-speaker calls ----------------------------------------------------------------------------
#: Neutral turns that make a demo call long (status updates, logistics, tangents): no effect on the outcome.
FILLER_TURNS = [
    "A: Let me pull up my notes from last time.|C: Sure, no rush.",
    "C: Can you repeat that? Someone walked into the room.|A: Of course, I said the report runs every night.",
    "A: How many people are on your team at the moment?|C: About a dozen, give or take the contractors.",
    "C: We use spreadsheets for most of this today, plus a shared drive.|A: That's very common.",
    "A: Is the data mostly in one system or spread around?|C: Spread around, honestly, three or four places.",
    "C: Our fiscal year starts in April, by the way.|A: Good to know, I'll note that down.",
    "A: Who else usually joins these conversations on your side?|C: Sometimes our operations lead, Priya.",
    "C: Sorry, my dog is barking, give me one second.|A: Ha, no problem at all.",
    "A: Do you work with an outside consultant?|C: We did last year, not anymore.",
    "C: The office Wi-Fi has been terrible this week.|A: That sounds frustrating.",
    "A: I'll share my screen in a moment.|C: Okay, I can see it now.",
    "C: Where is your company based again?|A: Our main office is in Lisbon, with a team in Austin.",
    "A: Do you remember roughly when the current setup went in?|C: Maybe four years ago, before my time.",
    "C: We had a holiday on Monday, so the week is short.|A: Lucky you, enjoy it.",
    "A: Let me check the calendar on my side.|C: Take your time.",
    "C: I'm taking notes as we go, so bear with me.|A: Sure, I'll slow down.",
    "A: Is it mostly desktop, or do people work on phones too?|C: Mostly desktop, a few on tablets.",
    "C: Our IT team is two people, so they're stretched.|A: I hear that a lot.",
    "A: Did you get the email I sent on Tuesday?|C: I think so, it's somewhere in my inbox.",
    "C: We're also hiring right now, so it's hectic.|A: Congratulations on the growth.",
]
#: Unicode the long calls carry: accents, curly quotes, dashes, a non-breaking space, an emoji.
UNICODE_TURNS = [
    "C: Our site in Malmö — the one José runs — uses the same process.",
    "A: “Right,” as my colleague Zoë would say… that’s the usual story.",
    "C: The budget line is 12 000 € for now 🙂",
    "A: Noted: naïve estimates tend to be off by 20 %.",
]


def long_calls(
    n: int = 200,
    seed: int = 0,
    phrase_pool: str = "train",
    filler: tuple[int, int] = (40, 80),
    crlf: bool = True,
    speakers: str = "mixed",
) -> list[dict]:
    """``n`` long two-speaker calls (NOT REAL DATA): each is a :func:`demo_transcripts` call (whose outcome and
    label it keeps) spread among ``filler`` neutral turns, so a call runs to several thousand tokens, well past
    the encoder's window. Made to look like exported real calls: CRLF line ends (``crlf``), speaker prefixes
    ``Agent:``/``Customer:`` or the people's names (``speakers`` = ``"roles"``, ``"names"`` or ``"mixed"``),
    a few empty turns and blank lines, unicode, and a table of the person's attributes in ``metadata``.
    Deterministic in ``seed``."""
    if speakers not in ("roles", "names", "mixed"):
        raise ValueError(f"speakers must be 'roles', 'names' or 'mixed', not {speakers!r}")
    low, high = int(filler[0]), int(filler[1])
    if not 0 <= low <= high:
        raise ValueError("filler must be (low, high) turn counts with 0 <= low <= high")
    base = demo_transcripts(n, seed=seed, phrase_pool=phrase_pool)
    rng = np.random.default_rng(seed + 7919)
    out = []
    for record in base:
        turns = record["transcript"].split("\n")
        agent, customer = "Agent", "Customer"
        named = speakers == "names" or (speakers == "mixed" and rng.random() < 0.5)
        if named:
            head = turns[0]
            agent = next((a for a in AGENT_NAMES if a in head), "Maya")
            customer = next((c for c in CUSTOMER_NAMES if c in head), "Laura")
        extra = []
        for _ in range(int(rng.integers(low, high + 1))):
            extra += _render(FILLER_TURNS[int(rng.integers(len(FILLER_TURNS)))], {})
        for _ in range(int(rng.integers(1, 4))):
            extra.append(
                UNICODE_TURNS[int(rng.integers(len(UNICODE_TURNS)))]
                .replace("A:", "Agent:", 1)
                .replace("C:", "Customer:", 1)
            )
        # the call's own turns keep their order; the filler goes in between them at random places
        slots = np.sort(rng.integers(1, len(turns), len(extra)))
        merged, k = [], 0
        for i, turn in enumerate(turns):
            while k < len(extra) and slots[k] == i:
                merged.append(extra[k])
                k += 1
            merged.append(turn)
        merged += extra[k:]
        lines = []
        for turn in merged:
            if rng.random() < 0.03:
                lines.append(f"{customer}:" if rng.random() < 0.5 else "")  # an empty turn, a blank line
            who, text = turn.split(":", 1)
            who = agent if who == "Agent" else customer
            lines.append(f"{who}:{text}")
        metadata = {
            **record["metadata"],
            "age": int(rng.integers(22, 70)),
            "income": int(round(float(rng.lognormal(10.5, 0.5)), -2)),
            "region": ["north", "south", "east", "west"][int(rng.integers(4))],
            "tenure_years": round(float(rng.uniform(0, 15)), 1),
            "source": "synthetic long calls",
        }
        out.append(
            {"transcript": ("\r\n" if crlf else "\n").join(lines), "label": record["label"], "metadata": metadata}
        )
    return out
