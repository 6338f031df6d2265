"""Pseudonyms the relay hands out, and words a chosen name may not contain.

Every member appears in the group under a pseudonym, never a number. ``PSEUDONYMS`` is the pool
new members draw from. Each one reads well and is easy to say in both French and English:
nature words and gentle names that suit anyone. The rules the pool keeps (a test holds them):

- letters only (accents are fine), 3 to 10 of them, capitalised;
- all distinct once case and accents are ignored, so ``Élie`` and ``Elie`` cannot both exist;
- no word for violence or danger, nothing that could embarrass on a phone someone else may
  read, no role or authority word, no pet name an abuser might use (Baby, Chérie, Angel...);
- no near twins in one pool (Noa/Noé, Ivy/Ivory), so members do not mix each other up;
- nothing whose sound means something hurtful in the other language (Violette starts with
  "viol", which is French for rape).

``RESERVED_WORDS`` are lower-case, accent-free words that a name a member chooses must not
contain, so nobody can pass for a facilitator, an admin, the organization or the relay itself.
This module is data only; the checks live where names are chosen.
"""

from __future__ import annotations

PSEUDONYMS: tuple[str, ...] = (
    # Trees, plants and flowers
    "Willow", "Iris", "Sage", "Aster", "Olive", "Maple", "Fern", "Ivy", "Hazel", "Laurel",
    "Juniper", "Rowan", "Alder", "Cedar", "Linden", "Aspen", "Acacia", "Myrtle", "Lila",
    "Daisy", "Clover", "Basil", "Dahlia", "Zinnia", "Azalée", "Camélia", "Magnolia", "Mimosa",
    "Jasmin", "Lotus", "Tulipe", "Saule", "Lavande", "Capucine", "Moss", "Reed", "Rose", "Lys",
    "Flora", "Holly", "Calla", "Freesia", "Gardenia", "Lilac", "Poppy",
    # Stones and colours
    "Jade", "Opal", "Amber", "Coral", "Perle", "Onyx", "Beryl", "Agate", "Jasper", "Topaze",
    "Ruby", "Azur", "Indigo", "Cyan", "Teal", "Sienna", "Saphir", "Mica", "Opaline",
    # Sky, water and land
    "Luna", "Sora", "Nova", "Stella", "Aurora", "Skye", "Ciel", "Brook", "River", "Rain",
    "Marin", "Océane", "Delta", "Prairie", "Glen", "Dune", "Echo", "Aube", "Soleil", "Eden",
    "Isla", "Zéphyr", "Horizon", "Cascade", "Vega", "Lyra", "Atlas", "Cosmo", "Mira",
    "Mistral", "Alizé", "Ondine",
    # Birds
    "Robin", "Wren", "Lark", "Finch", "Colombe", "Jay", "Merle", "Plume", "Piper", "Oriole",
    "Phoebe",
    # Gentle names that suit anyone, in both languages
    "Camille", "Sacha", "Noa", "Alix", "Céleste", "Charlie", "Dominique", "Claude", "Andréa",
    "Morgan", "Ariel", "Lou", "Élie", "Jules", "Rémy", "Alexis", "Quinn", "Avery", "Riley",
    "Emery", "Frankie", "Gabi", "Maé", "Nour", "Lior", "Ilan", "Sam", "Billie", "Jessie",
    "Elliot", "Ezra", "Blair", "Darcy", "Harper", "Sol", "Kim", "Dany", "Jordan", "Taylor",
    "Kai", "Nico", "Jamie", "Casey", "Drew", "Rory", "Laurence", "Frédérique", "Solène",
    "Mélodie", "Fable", "Elio", "Alma", "Talia",
)  # fmt: skip

RESERVED_WORDS: frozenset[str] = frozenset(
    {
        # Roles in the group
        "staff",
        "team",
        "equipe",
        "facilitator",
        "facilitatrice",
        "facilitateur",
        "animateur",
        "animatrice",
        "intervenant",
        "intervenante",
        "moderator",
        "moderateur",
        "moderatrice",
        "modo",
        "admin",
        "administrator",
        "administrateur",
        "administratrice",
        "coordinator",
        "coordonnateur",
        "coordonnatrice",
        "leader",
        "coach",
        "mentor",
        # Professions people trust on sight
        "counsellor",
        "counselor",
        "conseiller",
        "conseillere",
        "therapist",
        "therapeute",
        "doctor",
        "docteur",
        "nurse",
        "infirmier",
        "infirmiere",
        "director",
        "directeur",
        "directrice",
        "manager",
        "gestionnaire",
        # Authorities
        "police",
        "policier",
        "policiere",
        "official",
        "officiel",
        "officielle",
        "security",
        "securite",
        "emergency",
        "urgence",
        "alert",
        # The organization, the group and the relay itself
        "cercle",
        "organization",
        "organisation",
        "organisme",
        "group",
        "groupe",
        "everyone",
        "support",
        "soutien",
        "help",
        "helpline",
        "bot",
        "robot",
        "system",
        "systeme",
        "signal",
        "sms",
        "twilio",
        "anonymous",
        "anonyme",
    }
)
