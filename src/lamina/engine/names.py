"""Docker-style random container names: ``<adjective>_<surname>`` (moby namesgenerator)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Final

# A subset of moby's pkg/namesgenerator lists.
_ADJECTIVES_TEXT: Final = (
    "admiring adoring affectionate agitated amazing angry awesome beautiful blissful bold "
    "boring brave busy charming clever compassionate competent condescending confident cool "
    "cranky crazy dazzling determined distracted dreamy eager ecstatic elastic elated elegant "
    "eloquent epic exciting fervent festive flamboyant focused friendly frosty funny gallant "
    "gifted goofy gracious great happy hardcore heuristic hopeful hungry infallible inspiring "
    "intelligent interesting jolly jovial keen kind laughing loving lucid magical modest "
    "musing mystifying naughty nervous nice nifty nostalgic objective optimistic peaceful "
    "pedantic pensive practical priceless quirky quizzical recursing relaxed reverent "
    "romantic sad serene sharp silly sleepy stoic strange stupefied suspicious sweet tender "
    "thirsty trusting unruffled upbeat vibrant vigilant vigorous wizardly wonderful xenodochial "
    "youthful zealous zen"
)
_SURNAMES_TEXT: Final = (
    "agnesi albattani allen almeida archimedes ardinghelli babbage banach bardeen bartik "
    "bassi bell benz bhabha bhaskara blackwell bohr booth borg bose boyd brahmagupta brattain "
    "brown carson cerf chandrasekhar chatelet chaum clarke colden cori cray curie darwin "
    "davinci dijkstra dubinsky easley einstein elbakyan elgamal elion ellis engelbart euclid "
    "euler faraday feistel fermat fermi feynman franklin gagarin galileo gates gauss germain "
    "goldberg goldstine goldwasser golick goodall hamilton hawking heisenberg hellman hermann "
    "herschel hertz hodgkin hofstadter hoover hopper hugle hypatia jackson jang jennings "
    "jepsen johnson joliot jones kalam kare keller kepler khorana kilby kirch knuth "
    "kowalevski lalande lamarr lamport leakey leavitt lederberg lehmann lewin lichterman "
    "liskov lovelace lumiere mahavira margulis matsumoto maxwell mayer mccarthy mcclintock "
    "mclean mcnulty meitner mendel merkle mestorf mirzakhani montalcini moore morse moser "
    "napier nash neumann newton nightingale nobel noether northcutt noyce panini pare pascal "
    "pasteur payne perlman pike poincare poitras proskuriakova ptolemy raman ramanujan rhodes "
    "ride ritchie robinson roentgen rosalind rubin saha sammet sanderson satoshi shamir "
    "shannon shaw shirley shockley shtern sinoussi snyder solomon spence stonebraker sutherland "
    "swanson swartz swirles taussig tesla tharp thompson torvalds tu turing varahamihira "
    "vaughan visvesvaraya volhard villani wescoff wilbur wiles williams williamson wilson "
    "wing wozniak wright wu yalow yonath zhukovsky"
)
ADJECTIVES: Final = tuple(_ADJECTIVES_TEXT.split())
SURNAMES: Final = tuple(_SURNAMES_TEXT.split())


def _pick(n: int) -> int:
    # A name needs no cryptographic randomness, only no seed shared between processes: the
    # kernel's bytes, without the imports of `secrets` (hmac, base64, random) at start-up.
    return int.from_bytes(os.urandom(4)) % n


def random_name(*, taken: Callable[[str], bool]) -> str:
    """A fresh ``adjective_surname``; after a few collisions a digit is appended, as moby."""
    for attempt in range(64):
        name = f"{ADJECTIVES[_pick(len(ADJECTIVES))]}_{SURNAMES[_pick(len(SURNAMES))]}"
        if attempt >= 3:
            name += str(_pick(10))
        if name != "boring_wozniak" and not taken(name):  # moby's one exclusion
            return name
    return f"lamina_{os.urandom(6).hex()}"
