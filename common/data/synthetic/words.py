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
    "Stella", "Wendy", "Yara", "Zara", "Beth", "Abby", "Ada", "Agnes", "Alma", "Amara", "Amelia",
    "Ana", "Anya", "Ava", "Bea", "Bianca", "Carla", "Carmen", "Cora", "Dalia", "Dina", "Dora",
    "Edith", "Eliza", "Elsa", "Emily", "Erin", "Eva", "Fiona", "Flora", "Gemma", "Gina", "Gloria",
    "Helen", "Ilse", "Ines", "Isla", "Jana", "Jenny", "Josie", "Kara", "Keiko", "Kira", "Lara",
    "Leila", "Lola", "Lotte", "Lucia", "Mabel", "Mara", "Matilda", "Mina", "Miriam", "Nell",
    "Nia", "Noor", "Paula", "Petra", "Pia", "Rachel", "Rania", "Rhea", "Rosie", "Sadie", "Selma",
    "Sina", "Sofia", "Suki", "Talia", "Thea", "Tilly", "Uma", "Vera", "Viola", "Wanda", "Willa",
    "Xenia", "Yasmin", "Yuki", "Zelda", "Zina", "Ayla", "Celia", "Delia", "Esme", "Farah",
    "Hilda", "Imani", "Juno", "Lina", "Marta", "Nala", "Odette", "Pearl", "Rina", "Saanvi",
)  # fmt: skip
BOYS = (
    "Tom", "Ben", "Max", "Leo", "Sam", "Jack", "Tim", "Noah", "Finn", "Oscar", "Hugo", "Eli",
    "Luke", "Adam", "Owen", "Jake", "Theo", "Milo", "Ryan", "Paul", "Omar", "Ravi", "Kai", "Dan",
    "Toby", "Henry", "Felix", "Louis", "Arlo", "Joe", "Amir", "Bruno", "Carlos", "David", "Ezra",
    "George", "Ivan", "Jonah", "Kenji", "Liam", "Marco", "Nico", "Pablo", "Rafael", "Simon",
    "Victor", "Walter", "Yusuf", "Zack", "Billy", "Aaron", "Abel", "Ahmed", "Alan", "Albert",
    "Andre", "Anton", "Arthur", "Axel", "Boris", "Brian", "Caleb", "Cyrus", "Dario", "Dennis",
    "Diego", "Dmitri", "Eddie", "Elias", "Emil", "Eric", "Ethan", "Fabio", "Frank", "Gabe",
    "Gus", "Hamid", "Hans", "Harry", "Hiro", "Ian", "Igor", "Isaac", "Jamal", "Jasper", "Jonas",
    "Karl", "Kofi", "Lars", "Lenny", "Levi", "Lucas", "Malik", "Mateo", "Mika", "Nathan", "Ned",
    "Niko", "Ollie", "Otto", "Pedro", "Peter", "Rami", "Rex", "Rudy", "Sami", "Sergio", "Seth",
    "Stan", "Tariq", "Teddy", "Timo", "Tobias", "Ugo", "Vik", "Wes", "Xavier", "Yann", "Yosef",
    "Zane", "Anders", "Bastian", "Cedric", "Duncan", "Emilio", "Femi", "Gideon", "Harvey",
    "Idris", "Jude", "Kwame", "Lorenzo", "Manu", "Nils", "Orion", "Piet", "Quentin", "Rohan",
)  # fmt: skip
NEUTRAL = (
    "Alex", "Robin", "Sky", "Jordan", "Riley", "Quinn", "Charlie", "Kit", "Rowan", "Jesse",
    "Avery", "Morgan", "Casey", "Remy", "Sasha", "Ari", "Blake", "Cameron", "Dakota", "Eden",
    "Emery", "Finley", "Harper", "Jamie", "Jules", "Ash", "Lee", "Logan", "Marlo", "Bailey",
    "Noel", "Parker", "Reese", "Sage", "Shay", "Taylor", "Tatum", "Wren", "Yael", "Zuri",
)  # fmt: skip

HUMAN_KINDS = {"he": ("boy",), "she": ("girl",), "they": ("kid", "child")}
ANIMALS = (
    "rabbit", "fox", "bear", "mouse", "cat", "dog", "duck", "owl", "squirrel", "turtle", "frog",
    "pig", "lamb", "puppy", "kitten", "hedgehog", "deer", "goose", "lion", "monkey", "elephant",
    "giraffe", "zebra", "penguin", "hen", "badger", "otter", "raccoon", "tiger", "koala",
    "beaver", "mole", "goat", "pony", "horse", "donkey", "camel", "panda", "wolf", "sheep",
    "cow", "calf", "bunny", "chipmunk", "hamster", "kangaroo", "llama", "moose", "seal",
    "walrus", "sloth", "weasel", "ferret", "lynx", "leopard", "cheetah", "hippo", "rhino",
    "gorilla", "bison", "yak", "lemur", "meerkat", "possum", "skunk", "bat", "robin", "parrot",
    "swan", "crow", "sparrow", "chick", "turkey", "pelican", "flamingo", "toad",
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
    "violet", "crimson", "teal", "navy", "cream", "lilac", "turquoise", "amber", "scarlet", "lime",
    "peach", "plum-colored",
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
    "oranges", "bananas", "peaches", "pretzels", "crackers", "waffles", "dumplings", "noodles",
    "rice balls", "tacos", "a pizza", "a fruit salad", "cupcakes", "donuts", "popcorn",
    "raisins", "figs", "dates", "olives", "a loaf of bread", "corn cakes", "jam tarts",
    "cheese rolls", "boiled eggs", "mangoes", "kiwis", "apricots", "lemon cake", "oat bars",
    "a jar of honey", "tomatoes", "cucumbers", "a bowl of berries", "ginger biscuits", "scones",
)  # fmt: skip
HIDING_SPOTS = (
    "under a bush", "behind a big rock", "inside a hollow log", "under the bench",
    "next to a tree", "in the tall grass", "under a pile of leaves", "behind the fence",
    "under a wheelbarrow", "behind the shed", "in a flower bed", "beside a puddle",
    "under a wooden crate", "near the gate", "in a hole in the wall", "behind a bucket",
    "under a parked bike", "inside an old boot",
)  # fmt: skip
TIMES = (
    "One sunny morning", "One day", "One afternoon", "One windy day", "Early one morning",
    "On Saturday", "One warm evening", "After lunch", "One cloudy day", "On the first warm day",
    "One rainy morning", "On Sunday", "One foggy morning", "On a snowy day", "One bright morning",
    "Late one afternoon", "On Monday", "One chilly evening", "On the last day of summer",
    "One spring morning", "One autumn day", "Before dinner",
)  # fmt: skip
ELDERS = ("mom", "dad", "grandma", "grandpa", "aunt", "uncle")
ELDER_PRON = {
    "mom": SHE, "grandma": SHE, "aunt": SHE, "dad": HE, "grandpa": HE, "uncle": HE,
}  # fmt: skip


FEATHERED = (
    "duck", "owl", "goose", "penguin", "hen", "robin", "parrot", "swan", "crow", "sparrow", "chick",
    "turkey", "pelican", "flamingo",
)  # fmt: skip
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
    "Right then,", "Not long after,", "Later on,", "Just as quickly,", "Next,",
    "With a sigh,", "With a smile,", "Without waiting,", "Bit by bit,", "That morning,",
    "Then and there,", "Straight away,", "Step by step,", "Little by little,", "In a flash,",
    "Sure enough,", "To everyone's surprise,", "Quite suddenly,", "For a while,",
)  # fmt: skip
SPEECH_ADVERBS = (
    "softly", "happily", "sadly", "quietly", "slowly", "gently", "kindly", "shyly", "firmly",
    "sweetly", "nervously", "calmly",
    "warmly", "politely", "brightly", "cheerfully", "patiently", "softly and slowly", "seriously",
    "thoughtfully",
)  # fmt: skip
EXCLAIM_ADVERBS = (
    "loudly", "happily", "proudly", "bravely", "excitedly", "quickly", "angrily", "eagerly",
    "joyfully", "suddenly", "wildly", "boldly", "merrily",
)  # fmt: skip
QUESTION_ADVERBS = (
    "softly", "quietly", "nervously", "shyly", "slowly", "curiously", "gently", "carefully",
    "hopefully", "timidly", "politely", "anxiously", "kindly",
)  # fmt: skip
FEELINGS = (
    "happy", "sad", "scared", "excited", "worried", "surprised", "angry", "calm", "tired",
    "proud", "lonely", "hopeful", "confused", "grateful", "nervous", "relieved", "sleepy",
    "curious", "shy", "bored", "jolly", "puzzled", "cheery", "safe", "cozy",
)  # fmt: skip
FEELING_WAYS = (
    "{Name} felt {feeling}.",
    "{Name} was very {feeling}.",
    "{He} felt a bit {feeling}.",
    "Deep inside, {Name} felt {feeling}.",
    "{His} face looked {feeling}.",
)
SKIES = (
    "blue", "full of white clouds", "gray", "pink and orange", "pale", "soft and golden",
    "full of birds", "very big",
    "dark and stormy", "clear and bright", "the color of milk", "streaked with gold",
    "purple at the edges", "dotted with tiny clouds", "wide and empty", "heavy with rain",
)  # fmt: skip
SMELLS = (
    "fresh rain", "warm bread", "wet grass", "pine trees", "sweet flowers", "the sea",
    "wood smoke", "ripe apples", "cut hay", "hot soup", "lemons", "old leaves",
    "cinnamon", "fresh paint", "roses", "mint leaves", "baking cookies", "clean laundry",
    "oranges", "the river", "popcorn", "pepper", "chocolate", "wet sand", "lavender",
    "burnt toast", "hot pancakes", "fresh mud", "cut grass", "strawberry jam",
)  # fmt: skip
SOUNDS = (
    "birds singing", "a dog barking far away", "the wind in the trees", "children laughing",
    "a bell ringing", "water splashing", "leaves rustling", "a train whistle",
    "bees humming", "rain tapping on a roof", "a cow mooing", "music from a window",
    "a drum far away", "a baby crying", "a car horn", "frogs croaking", "a kettle whistling",
    "someone whistling a tune", "an owl hooting", "a door creaking", "a clock ticking",
    "a cat meowing", "a horse trotting", "a plane flying over", "thunder rumbling",
    "a bicycle bell", "people clapping", "a radio playing", "a rooster crowing",
    "sheep bleating",
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
    ("big", "large", "huge", "giant", "enormous"),
    ("little", "small", "tiny", "wee"),
    ("very", "really", "truly"),
    ("ran", "raced", "rushed", "hurried", "dashed"),
    ("walked", "strolled", "wandered", "stepped"),
    ("smiled", "grinned", "beamed"),
    ("laughed", "giggled", "chuckled"),
    ("jumped", "leaped", "hopped", "bounced"),
    ("scared", "afraid", "frightened"),
    ("sad", "unhappy", "gloomy", "glum"),
    ("friend", "pal", "buddy"),
    ("pretty", "lovely", "beautiful", "wonderful"),
    ("happy", "glad", "joyful", "delighted"),
    ("saw", "noticed"),
    ("started", "began"),
    ("wanted", "wished"),
    ("went", "headed"),
    ("found", "discovered"),
    ("fell", "tumbled"),
    ("strange", "odd", "weird"),
    ("loud", "noisy"),
    ("good", "nice"),
    ("ate", "munched"),
    ("hugged", "squeezed"),
    ("everyone", "everybody"),
    ("mom", "mother", "mommy", "mama"),
    ("dad", "father", "daddy", "papa"),
    ("grandma", "granny", "grandmother", "nana"),
    ("grandpa", "grandfather", "granddad", "grandad"),
    ("aunt", "auntie"),
    ("shiny", "sparkly", "gleaming"),
    ("fast", "quick", "speedy"),
)
THINGS_TO_COUNT = (
    "birds", "clouds", "stones", "flowers", "trees", "ducks", "shells", "leaves", "cars", "boats",
    "apples", "stars", "bees", "windows", "steps", "ants", "kites", "sheep", "cows", "houses",
    "butterflies", "snails", "buttons", "puddles", "bricks", "acorns", "pebbles", "feathers",
    "cookies", "balloons", "fish", "mushrooms",
    "pigeons", "lamps", "chairs", "benches", "crows", "dogs", "fences", "hats", "carrots",
    "candles", "jars", "ladders", "spoons", "cups", "wheels", "tents", "flags", "pumpkins",
    "goats", "rabbits", "bottles", "socks", "doors", "pencils", "marbles", "books", "bells",
    "frogs", "squirrels", "daisies",
)  # fmt: skip
PASSERS_BY = (
    "carrying a basket", "riding a bike", "walking a dog", "eating an apple", "reading a book",
    "flying a kite", "painting a fence", "singing a song", "selling balloons", "picking flowers",
    "pushing a cart", "feeding the birds", "looking for a lost key", "wearing a funny hat",
    "holding an umbrella", "carrying a ladder",
    "carrying a big cake", "pulling a wagon", "juggling three balls", "fixing a bike",
    "watering plants", "sweeping the path", "looking at a map", "blowing bubbles",
    "drawing with chalk", "playing a flute", "hanging up washing", "building a sandcastle",
    "carrying a fishing rod", "pushing a pram", "counting coins", "tying a shoelace",
    "chasing a butterfly", "humming a tune", "eating a sandwich", "holding a balloon",
)  # fmt: skip
# things a character owns a number of, gives some away, and counts again later
COLLECTIONS = (
    "marbles", "stickers", "crayons", "shells", "buttons", "coins", "cookies", "acorns",
    "pebbles", "ribbons", "cards", "beads",
    "stamps", "feathers", "keys", "pencils", "rocks", "bottle caps", "leaves", "toy cars",
    "seeds", "spoons",
)  # fmt: skip
# small things a character finds on the way, keeps, and looks at again later
TRINKETS = (
    "shell", "feather", "button", "leaf", "pebble", "ribbon", "key", "coin", "marble", "bead",
    "acorn", "pine cone", "stone", "spoon", "bell", "thimble", "glove", "sock", "mitten", "crayon",
    "pencil", "sticker", "card", "ticket", "bottle cap", "toy soldier", "whistle", "yo-yo string",
    "hair clip", "bracelet", "seashell", "map", "letter", "postcard", "kite string", "paintbrush",
    "jar lid", "walnut", "chestnut", "umbrella handle", "toy boat", "rubber duck", "plastic ring",
    "tin cup", "candle", "compass", "magnifying glass", "notebook", "puzzle piece", "domino",
)  # fmt: skip
KEEPSAKE_WAYS = (
    "{Name} looked at the {x} in {his} pocket again.",
    "{He} still had the {x} that {he} found {spot}.",
    "{Name} held the {x} tight.",
)
WINDS = (
    "calm", "soft", "cold", "warm", "strong", "gusty", "gentle", "chilly", "fresh", "wild",
    "still", "howling",
)  # fmt: skip
PASSER_ADJECTIVES = (
    "old", "young", "friendly", "chatty", "busy", "jolly", "sleepy", "clever", "kind", "gentle",
    "funny", "polite", "tired", "cheerful", "quiet", "curious", "grumpy", "shy", "brave", "silly",
)  # fmt: skip
