"""Word tables of the story generator: names, creatures, traits, places, things, and phrases."""

from __future__ import annotations

from dataclasses import dataclass

EOT = "<|endoftext|>"

# The last sentence of every story starts with one of these.
MORAL_OPENINGS = (
    "The moral of the story is",
    "And so {name} learned",
    "From that day on, {name} knew",
    "{name} learned an important lesson:",
)


MIN_WORDS = 100


@dataclass(frozen=True)
class Pronouns:
    he: str
    him: str
    his: str
    himself: str
    was: str
    is_: str
    has: str
    s: str  # third-person verb ending: "s" or ""


HE = Pronouns("he", "him", "his", "himself", "was", "is", "has", "s")
SHE = Pronouns("she", "her", "her", "herself", "was", "is", "has", "s")
THEY = Pronouns("they", "them", "their", "themselves", "were", "are", "have", "")

GIRLS = (
    "Lily", "Mia", "Emma", "Sara", "Anna", "Lucy", "Zoe", "Ella", "Grace", "Ruby", "Maya", "Chloe",
    "Nora", "Ivy", "Hannah", "Rosa", "Amy", "Julia", "Daisy", "Molly", "Sophie", "Clara", "Lena",
    "Tara", "Nina", "Olive", "Hazel", "Alice", "Kate", "Bella", "Fatima", "Aisha", "Mei", "Priya",
    "Elena", "Freya", "Greta", "Iris", "Jade", "Layla", "Luna", "Maria", "Nadia", "Poppy", "Rita",
    "Stella", "Wendy", "Yara", "Zara", "Beth",
)  # fmt: skip
BOYS = (
    "Tom", "Ben", "Max", "Leo", "Sam", "Jack", "Tim", "Noah", "Finn", "Oscar", "Hugo", "Eli",
    "Luke", "Adam", "Owen", "Jake", "Theo", "Milo", "Ryan", "Paul", "Omar", "Ravi", "Kai", "Dan",
    "Toby", "Henry", "Felix", "Louis", "Arlo", "Joe", "Amir", "Bruno", "Carlos", "David", "Ezra",
    "George", "Ivan", "Jonah", "Kenji", "Liam", "Marco", "Nico", "Pablo", "Rafael", "Simon",
    "Victor", "Walter", "Yusuf", "Zack", "Billy",
)  # fmt: skip
NEUTRAL = (
    "Alex", "Robin", "Sky", "Jordan", "Riley", "Quinn", "Charlie", "Kit", "Rowan", "Jesse",
    "Avery", "Morgan", "Casey", "Remy", "Sasha",
)  # fmt: skip

HUMAN_KINDS = {"he": ("boy",), "she": ("girl",), "they": ("kid", "child")}
ANIMALS = (
    "rabbit", "fox", "bear", "mouse", "cat", "dog", "duck", "owl", "squirrel", "turtle", "frog",
    "pig", "lamb", "puppy", "kitten", "hedgehog", "deer", "goose", "lion", "monkey", "elephant",
    "giraffe", "zebra", "penguin", "hen", "badger", "otter", "raccoon", "tiger", "koala",
)  # fmt: skip

# trait -> (adjective, description sentences, how the trait shows in a problem)
TRAITS: dict[str, tuple[str, ...]] = {
    "curious": (
        "{He} always wanted to know how things worked.",
        "{He} asked a hundred questions every day.",
        "{He} liked to look under every rock and behind every door.",
    ),
    "brave": (
        "{He} {was} not afraid of the dark or of big dogs.",
        "{He} liked to climb the tallest trees.",
        '{He} always said, "I can do it!"',
    ),
    "shy": (
        "{He} spoke very quietly and liked to watch from far away.",
        "{He} did not like to talk to new people.",
        "{He} often hid behind {his} mom when visitors came.",
    ),
    "kind": (
        "{He} always helped others when they were sad.",
        "{He} liked to give {his} friends little gifts.",
        "{He} never said a mean word to anyone.",
    ),
    "grumpy": (
        "{He} frowned a lot and did not like to share.",
        '{He} often said, "Go away, I want to be alone!"',
        "Nothing ever seemed to make {him} happy.",
    ),
    "cheerful": (
        "{He} sang a happy song every morning.",
        "{He} smiled at everyone {he} met.",
        "{He} laughed so loudly that the birds laughed too.",
    ),
    "clever": (
        "{He} {was} very good at solving puzzles.",
        "{He} could count all the way to one hundred.",
        "{He} always had a smart idea.",
    ),
    "silly": (
        "{He} liked to make funny faces.",
        "{He} wore {his} hat upside down just to make people laugh.",
        "{He} told jokes all day long.",
    ),
    "lazy": (
        "{He} liked to sleep until the sun was high.",
        "{He} did not like to work hard.",
        '{He} always said, "I will do it later."',
    ),
    "proud": (
        "{He} liked to tell everyone that {he} {was} the best.",
        "{He} thought {he} could do everything alone.",
        "{He} did not like to ask for help.",
    ),
}

# place -> (phrase, features, activities)
PLACES: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "park": (
        ("the park", "the big park", "the green park"),
        ("a tall slide", "a big oak tree", "a pond with ducks", "a sandbox", "a wooden bench"),
        ("play on the swings", "run on the grass", "feed the ducks"),
    ),
    "forest": (
        ("the forest", "the dark forest", "the quiet woods"),
        ("tall pine trees", "a little stream", "a hollow log", "soft green moss", "a mossy rock"),
        ("pick berries", "look for mushrooms", "listen to the birds"),
    ),
    "beach": (
        ("the beach", "the sunny beach", "the seaside"),
        ("big blue waves", "white shells", "a rock pool", "warm yellow sand", "a little boat"),
        ("build a sandcastle", "collect shells", "splash in the waves"),
    ),
    "garden": (
        ("the garden", "the flower garden", "grandma's garden"),
        ("red roses", "a vegetable patch", "a small fountain", "a green hedge", "an apple tree"),
        ("water the flowers", "dig in the dirt", "chase butterflies"),
    ),
    "farm": (
        ("the farm", "the old farm", "the busy farm"),
        ("a red barn", "a muddy field", "a haystack", "a wooden fence", "a big tractor"),
        ("feed the chickens", "jump in the hay", "ride on the tractor"),
    ),
    "school": (
        ("school", "the little school", "the classroom"),
        ("a big blackboard", "a shelf of books", "a colorful rug", "a fish tank", "small desks"),
        ("paint pictures", "read stories", "play with blocks"),
    ),
    "river": (
        ("the river", "the wide river", "the riverbank"),
        ("smooth stones", "a wooden bridge", "tall reeds", "a fallen tree", "clear cold water"),
        ("throw stones", "watch the fish", "float paper boats"),
    ),
    "hill": (
        ("the hill", "the windy hill", "the top of the hill"),
        ("long green grass", "a lonely tree", "a view of the town", "yellow flowers", "a big rock"),
        ("fly kites", "roll down the grass", "look at the clouds"),
    ),
    "market": (
        ("the market", "the town market", "the busy market"),
        ("stalls of fruit", "a man selling bread", "baskets of eggs", "a flower stall", "crowds"),
        ("buy apples", "smell the fresh bread", "look at the toys"),
    ),
    "library": (
        ("the library", "the old library", "the town library"),
        ("tall shelves", "soft chairs", "a quiet corner", "picture books", "a big globe"),
        ("read books", "look at maps", "listen to a story"),
    ),
    "pond": (
        ("the pond", "the little pond", "the duck pond"),
        ("green lily pads", "a family of ducks", "a small dock", "cattails", "a sleepy frog"),
        ("catch tadpoles", "skip stones", "watch the dragonflies"),
    ),
    "zoo": (
        ("the zoo", "the big zoo", "the city zoo"),
        ("a tall giraffe", "a sleepy lion", "a pool with seals", "noisy parrots", "a big fence"),
        ("see the animals", "feed the goats", "watch the penguins"),
    ),
    "playground": (
        ("the playground", "the school playground", "the new playground"),
        ("a red slide", "a sandpit", "a climbing frame", "a merry-go-round", "two seesaws"),
        ("play tag", "go down the slide", "swing high"),
    ),
    "meadow": (
        ("the meadow", "the flower meadow", "the sunny meadow"),
        ("bright wildflowers", "buzzing bees", "a stone wall", "tall grass", "a little brook"),
        ("pick flowers", "chase butterflies", "have a picnic"),
    ),
    "bakery": (
        ("the bakery", "the corner bakery", "the warm bakery"),
        ("fresh bread", "a big oven", "cakes in the window", "a smiling baker", "sweet buns"),
        ("buy a cake", "smell the bread", "watch the baker"),
    ),
    "mountain": (
        ("the mountain", "the snowy mountain", "the foot of the mountain"),
        ("a cold stream", "big gray rocks", "a wooden hut", "snow on the top", "a narrow path"),
        ("climb the rocks", "look at the valley", "make a snowman"),
    ),
}

COLORS = (
    "red", "blue", "green", "yellow", "purple", "orange", "pink", "white", "brown", "gold",
    "silver", "black", "gray", "striped", "spotted",
)  # fmt: skip
# object noun -> (adjectives, what you do with it)
OBJECTS: dict[str, tuple[tuple[str, ...], str]] = {
    "ball": (("bouncy", "round", "shiny"), "throw"),
    "kite": (("big", "shiny", "long-tailed"), "fly"),
    "teddy bear": (("soft", "old", "fluffy"), "hug"),
    "hat": (("warm", "funny", "floppy"), "wear"),
    "book": (("new", "thick", "old"), "read"),
    "toy car": (("fast", "little", "shiny"), "race"),
    "doll": (("small", "pretty", "old"), "dress"),
    "scarf": (("long", "woolly", "warm"), "wear"),
    "boat": (("little", "wooden", "toy"), "sail"),
    "drum": (("loud", "little", "round"), "play"),
    "ring": (("tiny", "shiny", "silver"), "wear"),
    "shovel": (("little", "plastic", "strong"), "dig with"),
    "umbrella": (("big", "striped", "new"), "open"),
    "basket": (("woven", "small", "round"), "carry"),
    "balloon": (("big", "shiny", "round"), "hold"),
    "toy train": (("long", "wooden", "noisy"), "push"),
    "flute": (("little", "wooden", "silver"), "play"),
    "puzzle": (("hard", "new", "big"), "finish"),
    "lantern": (("bright", "little", "old"), "carry"),
    "jump rope": (("long", "new", "bright"), "jump with"),
    "necklace": (("pretty", "beaded", "shiny"), "wear"),
    "bucket": (("little", "plastic", "red"), "fill"),
    "robot toy": (("noisy", "clever", "shiny"), "play with"),
    "yo-yo": (("fast", "shiny", "little"), "spin"),
}
FOODS = (
    "cookies", "apples", "a cake", "sandwiches", "strawberries", "a pie", "cherries", "muffins",
    "carrots", "honey bread", "pancakes", "grapes", "cheese", "plums", "biscuits", "soup",
    "pears", "a big melon", "blueberries", "nuts",
)  # fmt: skip
HIDING_SPOTS = (
    "under a bush", "behind a big rock", "inside a hollow log", "under the bench",
    "next to a tree", "in the tall grass", "under a pile of leaves", "behind the fence",
)  # fmt: skip
TIMES = (
    "One sunny morning", "One day", "One afternoon", "One windy day", "Early one morning",
    "On Saturday", "One warm evening", "After lunch", "One cloudy day", "On the first warm day",
)  # fmt: skip
ELDERS = ("mom", "dad", "grandma", "grandpa", "aunt", "uncle")
ELDER_PRON = {
    "mom": SHE, "grandma": SHE, "aunt": SHE, "dad": HE, "grandpa": HE, "uncle": HE,
}  # fmt: skip


FEATHERED = ("duck", "owl", "goose")
FUR_COLORS = ("brown", "white", "gray", "golden", "black", "orange", "spotted")
CLOSINGS = (
    "That night, {Name} went to bed with a big smile.",
    "It was a day {Name} would never forget.",
    "When the sun went down, {Name} walked home feeling happy.",
    "{Name} told the story to everyone {he} knew.",
    "After that day, {Name} was a little wiser.",
)


FEARS = {
    "the dark": (
        "the room was dark",
        "turned on a small light",
        "the dark was only the night, resting",
    ),
    "the water": (
        "the water looked deep",
        "held hands and stepped in slowly",
        "the water was warm and fun",
    ),
    "the big dog": (
        "a big dog barked",
        "held out a hand very slowly",
        "the dog only wanted to play",
    ),
    "thunder": (
        "thunder boomed in the sky",
        "counted the seconds after each flash",
        "thunder is just a loud noise",
    ),
    "the tall slide": (
        "the slide was very tall",
        "climbed up one step at a time",
        "the slide was fast and fun",
    ),
}


TROUBLES = (
    (
        "a little bird",
        "had a hurt wing",
        "made a soft bed of leaves for it",
        "the bird could fly again",
        "it",
    ),
    (
        "a small kitten",
        "was stuck up a tree",
        "ran to get a ladder",
        "the kitten was safe on the ground",
        "it",
    ),
    (
        "a baby duck",
        "had lost its mother",
        "looked all around the pond",
        "the duckling was back with its family",
        "it",
    ),
    (
        "an old man",
        "had dropped his apples",
        "picked up every apple",
        "all the apples were back in the bag",
        "him",
    ),
    (
        "a little girl",
        "could not find her way home",
        "walked with her to the big road",
        "the girl saw her house",
        "her",
    ),
    (
        "a tiny snail",
        "was in the middle of the path",
        "carried it gently to the grass",
        "the snail was safe",
        "it",
    ),
)


BREAKABLES = ("vase", "cup", "plate", "lamp", "jar", "window")

NOISES = {
    "squeak": (
        "a tiny mouse looking for crumbs",
        "gave the mouse a piece of cheese and carried it outside",
    ),
    "tap": (
        "a tree branch knocking on the window in the wind",
        "tied the branch away from the window",
    ),
    "scratch": (
        "a little raccoon looking for food",
        "opened the back door, and the raccoon ran into the woods",
    ),
    "thump": (
        "the neighbor's cat jumping on some old boxes",
        "gave the cat a bowl of milk and took it home",
    ),
    "drip": ("a leaky pipe dripping into a bucket", "called a plumber to fix the pipe"),
}


# ------------------------------------------------------------- details (the difficulty knob)
# Openers put before a plot sentence; none of them starts a sentence of the plots themselves.
OPENERS = (
    "Soon,", "Just then,", "A moment later,", "After a while,", "Before long,", "At that moment,",
    "Right away,", "For a moment,", "All of a sudden,", "A little later,", "Without a word,",
    "By then,", "In no time,", "At first,", "Meanwhile,", "Once more,",
)  # fmt: skip
SPEECH_ADVERBS = (
    "softly", "happily", "sadly", "quietly", "slowly", "gently", "kindly", "shyly", "firmly",
    "sweetly", "nervously", "calmly",
)  # fmt: skip
EXCLAIM_ADVERBS = ("loudly", "happily", "proudly", "bravely", "excitedly", "quickly", "angrily")
QUESTION_ADVERBS = ("softly", "quietly", "nervously", "shyly", "slowly", "curiously", "gently")
FEELINGS = (
    "happy", "sad", "scared", "excited", "worried", "surprised", "angry", "calm", "tired",
    "proud", "lonely", "hopeful", "confused", "grateful", "nervous", "glad",
)  # fmt: skip
FEELING_WAYS = (
    "{Name} felt {feeling}.",
    "{Name} was very {feeling}.",
    "{He} felt a little {feeling}.",
    "Deep inside, {Name} felt {feeling}.",
    "{His} face looked {feeling}.",
)
SKIES = (
    "blue", "full of white clouds", "gray", "pink and orange", "pale", "soft and golden",
    "full of birds", "very big",
)  # fmt: skip
SMELLS = (
    "fresh rain", "warm bread", "wet grass", "pine trees", "sweet flowers", "the sea",
    "wood smoke", "ripe apples", "cut hay", "hot soup", "lemons", "old leaves",
)  # fmt: skip
SOUNDS = (
    "birds singing", "a dog barking far away", "the wind in the trees", "children laughing",
    "a bell ringing", "water splashing", "leaves rustling", "a train whistle",
    "bees humming", "rain tapping on a roof", "a cow mooing", "music from a window",
)  # fmt: skip
# creatures met on the way: (noun, adjectives, what it is doing, what it does when seen again)
CREATURES = (
    ("butterfly", ("yellow", "tiny", "blue", "orange"), "flying from flower to flower",
     "landed on {his} hand"),
    ("squirrel", ("gray", "little", "busy", "fat"), "hiding a nut",
     "ran up a tree with its nut"),
    ("beetle", ("shiny", "green", "tiny", "black"), "walking on a leaf",
     "crawled under a stone"),
    ("bird", ("little", "red", "brown", "noisy"), "singing on a branch",
     "flew over {his} head"),
    ("snail", ("slow", "tiny", "brown", "striped"), "climbing a wall",
     "was still on the wall"),
    ("frog", ("green", "fat", "little", "spotted"), "sitting on a stone",
     "jumped into the water"),
    ("cat", ("sleepy", "white", "black", "orange"), "sleeping in the sun",
     "opened one eye and yawned"),
    ("dog", ("friendly", "big", "brown", "fluffy"), "chasing its tail",
     "wagged its tail at {him}"),
    ("ladybug", ("red", "tiny", "spotted", "bright"), "sitting on a flower",
     "flew away into the sky"),
    ("duck", ("white", "noisy", "little", "brown"), "waddling along the path",
     "quacked and waddled away"),
)  # fmt: skip
COUNTS = ("two", "three", "four", "five", "six", "seven", "eight", "ten")
# Interchangeable words of plot sentences: any member of a group may stand for any other. No
# member is a trait, a speech verb, or an option of a draw that also offers another member.
SYNONYMS = (
    ("big", "large", "huge", "giant"),
    ("little", "small", "tiny"),
    ("very", "really"),
    ("ran", "raced", "rushed", "hurried"),
    ("walked", "strolled", "wandered"),
    ("smiled", "grinned", "beamed"),
    ("laughed", "giggled", "chuckled"),
    ("jumped", "leaped", "hopped"),
    ("scared", "afraid", "frightened"),
    ("sad", "unhappy", "gloomy"),
    ("friend", "pal", "buddy"),
    ("pretty", "lovely"),
)
THINGS_TO_COUNT = (
    "birds", "clouds", "stones", "flowers", "trees", "ducks", "shells", "leaves", "cars", "boats",
    "apples", "stars", "bees", "windows", "steps", "ants", "kites", "sheep", "cows", "houses",
    "butterflies", "snails", "buttons", "puddles", "bricks", "acorns", "pebbles", "feathers",
    "cookies", "balloons", "fish", "mushrooms",
)  # fmt: skip
PASSERS_BY = (
    "carrying a basket", "riding a bike", "walking a dog", "eating an apple", "reading a book",
    "flying a kite", "painting a fence", "singing a song", "selling balloons", "picking flowers",
    "pushing a cart", "feeding the birds", "looking for a lost key", "wearing a funny hat",
    "holding an umbrella", "carrying a ladder",
)  # fmt: skip
# things a character owns a number of, gives some away, and counts again later
COLLECTIONS = (
    "marbles", "stickers", "crayons", "shells", "buttons", "coins", "cookies", "acorns",
    "pebbles", "ribbons", "cards", "beads",
)  # fmt: skip
