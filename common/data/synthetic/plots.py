"""The plots: each writes the middle of a story (problem, dialogue, resolution) and its moral."""

from __future__ import annotations

from collections.abc import Callable

from common.data.synthetic.characters import a
from common.data.synthetic.story import Story
from common.data.synthetic.words import (
    BREAKABLES,
    FEARS,
    FOODS,
    HIDING_SPOTS,
    NOISES,
    TIMES,
    TROUBLES,
)


def _plot_lost(s: Story) -> None:
    h, f = s.hero, s.friend
    obj = s.obj
    s.add(h.f("{Name} had {a_obj}.", a_obj=a(f"{s.obj_adj} {obj}")))
    s.add(h.f("{He} loved to {verb} it every day.", verb=s.obj_verb))
    s.go_to_place()
    s.add(
        h.f(
            "{He} put the {obj} down to {act}. When {he} came back, the {obj} was gone!",
            obj=obj, act=s.c(*s.activities),
        )  # fmt: skip
    )
    s.add(
        s.say(h, s.c(f"Oh no! Where is my {obj}?", f"My {obj} is gone!", f"Where did my {obj} go?"))
    )
    s.add(h.f("{Name} felt very sad. {He} started to cry."))
    s.add(s.say(f, s.c("Don't cry. I will help you look for it.", "We can find it together!")))
    spot = s.c(*HIDING_SPOTS)
    looked = s.c(*(x for x in HIDING_SPOTS if x != spot))
    s.add(f"They looked {looked}, but it was not there.")
    if s.chance(0.3):
        s.add(f.f("Then {Name} had an idea. {He} looked {spot}.", spot=spot))
    else:
        s.add(f"Then they looked {spot}.")
    s.add(
        s.c(f"There was the {s.obj_adj} {obj}!", f"The {obj} was there!", f"They found the {obj}!")
    )
    s.add(
        h.f("{Name} hugged {friend}. ", friend=f.name).strip()
        + " "
        + s.say(h, s.c("Thank you for helping me!", "You are the best friend ever!"))
    )
    s.add(
        s.c(
            f"After that, {h.name} always kept the {obj} close.",
            f"They played with the {obj} until the sun went down.",
        )
    )
    s.moral((
        "a good friend helps you when you are sad",
        "you should never give up",
        "friends can find anything together",
        "it is good to take care of the things you love",
    ))  # fmt: skip


def _plot_share(s: Story) -> None:
    h, f = s.hero, s.friend
    has_food = s.chance(0.5)
    food = s.c(*FOODS) if has_food else ""
    thing = food if has_food else f"{s.obj_adj} {s.obj}"
    ref = food if has_food else s.obj
    s.go_to_place()
    s.add(h.f("{Name} had {thing}.", thing=thing if has_food else a(thing)))
    s.add(
        s.say(
            f,
            s.c(
                f"Can I have some of your {ref}?" if has_food else f"Can I play with your {ref}?",
                f"May I try your {ref}, please?",
            ),
        )
    )
    if h.trait in ("grumpy", "proud", "lazy") or s.chance(0.5):
        s.add(
            s.say(
                h,
                s.c(f"No! The {ref} {'are' if ref.endswith('s') else 'is'} mine!", "No, go away!"),
            )
        )
        s.add(
            f.f("{Name} felt sad. {He} walked away and sat alone {spot}.", spot=s.c(*HIDING_SPOTS))
        )
        s.add(h.f("{Name} looked at {friend}. {He} did not feel happy anymore.", friend=f.name))
        s.add(h.f("{He} thought about how {friend} felt.", friend=f.name))
        s.add(h.f('{He} walked to {friend} and said, "I am sorry. Let\'s share."', friend=f.name))
    else:
        s.add(s.say(h, s.c(f"Yes! Let's share the {ref}.", "Of course! Sharing is fun.")))
    if has_food:
        s.add(
            s.c(
                f"They ate the {ref} together.",
                f"They shared the {ref}, and each of them had the same.",
            )
        )
        s.add(s.c("It tasted even better when they shared.", "They both smiled with full tummies."))
    else:
        s.add(s.c(f"They took turns with the {ref}.", f"They played with the {ref} together."))
        s.add(
            s.c("Playing together was more fun than playing alone.", "They laughed all afternoon.")
        )
    s.add(f.f('{Name} said, "Thank you. You are a good friend."'))
    s.moral((
        "sharing makes everyone happy",
        "it is kind to share with your friends",
        "things are more fun when you share them",
    ))  # fmt: skip


def _plot_fear(s: Story) -> None:
    h = s.hero
    fear = s.c(*FEARS)
    problem, action, truth = FEARS[fear]
    s.add(h.f("{Name} {was} afraid of {fear}.", fear=fear))
    if h.trait == "brave":
        s.add(h.f("{He} told everyone {he} {was} brave, but this was {his} secret."))
    s.go_to_place(with_friend=s.chance(0.6))
    helper_name = s.friend.name if s.chance(0.6) else f"{h.p.his} {s.elder}"
    helper_cap = helper_name[0].upper() + helper_name[1:]
    s.add(h.f("Suddenly, {problem}.", problem=problem))
    s.add(h.f("{Name} started to shake. {He} wanted to run home."))
    s.add(s.say(h, s.c("I am scared!", "I can't do it!", "Please help me!")))
    s.add(
        f'{helper_cap} said, "'
        + s.c("It is okay to be scared.", "You are braver than you think.", "I will stay with you.")
        + '"'
    )
    s.add(h.f("{Name} took a deep breath. {He} {action}.", action=action))
    s.add(h.f("Soon {he} saw that {truth}.", truth=truth))
    s.add(s.say(h, s.c("I did it!", "It is not scary at all!", "That was fun!")))
    s.add(h.f("{Name} smiled, and {helper} smiled too.", helper=helper_name))
    s.moral((
        "being brave means trying even when you are scared",
        "many scary things are not so scary when you face them",
        "a friend can help you be brave",
    ))  # fmt: skip


def _plot_help(s: Story) -> None:
    h = s.hero
    who, trouble, action, result, obj_pron = s.c(*TROUBLES)
    s.go_to_place(with_friend=s.chance(0.5))
    s.add(
        h.f("Then {Name} saw {who}. It {trouble}.", who=who, trouble=trouble)
        .replace("It had dropped his", "He had dropped his")
        .replace("It could not find her", "She could not find her")
    )
    if h.trait in ("grumpy", "lazy", "proud"):
        s.add(h.f("At first, {Name} wanted to walk away."))
        s.add(h.f('But {he} thought, "What if it was me?"'))
    else:
        s.add(s.say(h, s.c("Oh no! I have to help!", "Don't worry, I will help you!")))
    s.add(h.f("{Name} {action}.", action=action))
    s.add(h.f("It took a long time, but {he} did not stop."))
    s.add(f"At last, {result}.")
    thanks = (
        "said thank you"
        if obj_pron != "it"
        else s.c("chirped a happy song", "looked up with happy eyes")
    )
    s.add(
        h.f(
            "{Who} {thanks}, and {Name} felt warm inside.",
            Who=who[0].upper() + who[1:],
            thanks=thanks,
        )
        .replace("A little girl said", "The little girl said")
        .replace("An old man said", "The old man said")
        .replace("A ", "The ", 1)
    )
    s.add(
        h.f(
            'When {he} told {his} {elder} about it, {elder_he} said, "I am so proud of you."',
            elder=s.elder,
            elder_he=s.elder_p.he,
        )
    )
    s.moral((
        "helping others makes your heart happy",
        "we should always help those who need it",
        "a small kind act can make a big difference",
    ))  # fmt: skip


def _plot_honest(s: Story) -> None:
    h = s.hero
    thing = s.c(*BREAKABLES)
    el, ep = s.elder, s.elder_p
    s.add(h.f("{Name} was playing with {his} {obj} inside the house.", obj=s.obj))
    s.add(h.f('{His} {el} had said, "Please do not play with that in the house."', el=el))
    s.add(
        h.f(
            "But {Name} did not listen. Crash! The {obj} hit {his} {el}'s {thing}, and it broke.",
            obj=s.obj,
            el=el,
            thing=thing,
        )
    )
    s.add(
        h.f(
            "{Name} was scared. {He} hid the pieces {spot}.",
            spot=s.c("under the bed", "behind the sofa", "in a box", "under a rug"),
        )
    )
    s.add(
        f'When {h.p.his} {el} came home, {ep.he} asked, "Do you know what happened to my {thing}?"'
    )
    if h.trait in ("grumpy", "proud", "silly") or s.chance(0.4):
        s.add(s.say(h, s.c("I don't know.", "Maybe the cat did it.")))
        s.add(h.f("That night, {Name} could not sleep. {He} felt bad inside."))
        s.add(h.f("In the morning, {he} went to {his} {el}.", el=el))
    s.add(
        s.say(
            h,
            s.c(
                f"I broke your {thing}. I am sorry.",
                f"It was me. I broke the {thing} with my {s.obj}.",
            ),
        )
    )
    s.add(f"{h.p.his.capitalize()} {el} gave {h.p.him} a big hug.")
    s.add(
        f'"Thank you for telling me the truth," {ep.he} said. '
        + '"Things can be fixed. I am glad you were honest."'
    )
    s.add(
        h.f("Together they fixed the {thing} with glue.", thing=thing)
        if thing != "window"
        else "Together they called a man to fix the window."
    )
    s.moral((
        "it is always best to tell the truth",
        "telling the truth makes you feel better",
        "being honest is more important than being perfect",
    ))  # fmt: skip


def _plot_weather(s: Story) -> None:
    h, f = s.hero, s.friend
    food = s.c(*FOODS)
    s.add(
        h.f(
            "{Name} and {friend} wanted to have a picnic at {where}.",
            friend=f.name,
            where=s.where_(),
        )
    )
    s.add(f"They packed {food} in a basket.")
    weather = s.c("rain", "snow", "wind")
    if weather == "rain":
        s.add("But then dark clouds came, and it started to rain.")
        cause = "Because it was raining"
    elif weather == "snow":
        s.add("But then it got very cold, and snow began to fall.")
        cause = "Because of the snow"
    else:
        s.add("But then a strong wind began to blow, and the trees bent.")
        cause = "Because the wind was so strong"
    s.add(f"{cause}, they could not go to {s.where_()}.")
    s.add(s.say(h, s.c("This is the worst day ever!", "Now our day is ruined!")))
    if h.trait in ("grumpy", "lazy"):
        s.add(h.f("{Name} sat on the floor and frowned."))
    s.add(s.say(f, s.c("We can have a picnic inside!", "Let's make the best of it!")))
    s.add(s.c(
        "They put a blanket on the floor and made a fort with pillows.",
        "They spread a blanket on the living room floor.",
        "They built a little tent out of chairs and sheets.",
    ))  # fmt: skip
    s.add(f"They ate the {food.removeprefix('a ')} and told stories.")
    s.add(s.c(
        f"Later, the {weather} stopped, and the sun came out.",
        f"They listened to the {weather} outside and laughed.",
    ))  # fmt: skip
    s.add(h.f('{Name} said, "This was the best picnic ever!"'))
    s.moral((
        "you can have fun even when plans change",
        "it is good to make the best of a bad day",
        "a good friend can turn a sad day into a happy one",
    ))  # fmt: skip


def _plot_race(s: Story) -> None:
    h, f = s.hero, s.friend
    goal = s.c(*s.features)
    s.go_to_place()
    s.add(s.say(h, f"Let's have a race to {goal}!"))
    if h.trait == "proud":
        s.add(s.say(h, "I am the fastest. I will win for sure!"))
    s.add(s.c("Ready, set, go!", "One, two, three, go!"))
    s.add(h.f("{Name} ran very fast. {friend} ran fast too.", friend=f.name))
    s.add(f.f("Then {Name} tripped on a stone and fell down. {He} hurt {his} knee."))
    if h.trait in ("proud", "grumpy") and s.chance(0.5):
        s.add(h.f("{Name} kept running and reached {goal} first.", goal=goal))
        s.add(
            h.f(
                "But when {he} turned around, {he} saw {friend} crying on the ground.",
                friend=f.name,
            )
        )
        s.add(h.f("Winning did not feel good anymore. {He} ran back to help.", friend=f.name))
    else:
        s.add(h.f("{Name} stopped running. {He} ran back to {friend}.", friend=f.name))
    s.add(s.say(h, s.c("Are you okay?", "Does it hurt?")))
    s.add(f.f("{Name} nodded and stood up slowly."))
    s.add(s.c(
        f"They walked to {goal} together, hand in hand.",
        f"Together they walked the rest of the way to {goal}.",
    ))  # fmt: skip
    s.add(s.say(f, "Thank you for coming back for me."))
    s.moral((
        "helping a friend is more important than winning",
        "being kind is better than being first",
        "friends matter more than prizes",
    ))  # fmt: skip


def _plot_practice(s: Story) -> None:
    h = s.hero
    skill, fail, win = s.c(
        ("ride a bike", "fell over", "rode all the way down the street"),
        ("bake a cake", "burned the cake", "made a soft, sweet cake"),
        (
            "build a tall tower of blocks",
            "watched the tower fall down",
            "built a tower taller than the table",
        ),
        ("tie {his} shoes", "made a big knot", "tied a perfect bow"),
        ("swim", "sank and got water in {his} nose", "swam across the pool"),
        ("whistle", "only made a funny puff of air", "whistled a little song"),
    )
    s.add(h.f("{Name} wanted to learn to " + skill + "."))
    s.add(h.f("The first time {he} tried, {he} " + fail + "."))
    s.add(s.say(h, s.c("This is too hard!", "I will never learn!")))
    if h.trait in ("lazy", "grumpy", "proud"):
        s.add(h.f("{He} wanted to give up and go home."))
    s.add(h.f(f'{{His}} {s.elder} said, "Try again. Everyone learns slowly at first."'))
    s.add(h.f("The second time, {he} tried a little harder, but {he} " + fail + " again."))
    s.add(h.f("{Name} did not give up. {He} practiced every day."))
    s.add(h.f("On the third day, {he} " + win + "!"))
    s.add(s.say(h, s.c("I did it! I really did it!", "Look at me!")))
    s.add(h.f("{His} {elder} clapped {elder_his} hands.", elder=s.elder, elder_his=s.elder_p.his))
    s.moral((
        "practice makes things easier",
        "if you keep trying, you will get better",
        "you should never give up when something is hard",
    ))  # fmt: skip


def _plot_newfriend(s: Story) -> None:
    h, f = s.hero, s.friend
    s.friend_known = True
    s.add(f.f("{Name} was new in town. {He} did not know anyone."))
    s.go_to_place(with_friend=False)
    s.add(f.f("{Name} was sitting alone. {He} looked sad."))
    s.add(h.f("The other children were playing, and nobody asked {friend} to join.", friend=f.name))
    if h.trait == "shy":
        s.add(h.f("{Name} was shy too, so {he} knew how it felt to be alone."))
    s.add(h.f("{Name} walked over to {friend}.", friend=f.name))
    s.add(s.say(h, s.c("Hello! Do you want to play with me?", "Hi! What is your name?")))
    s.add(f.f('{Name} smiled for the first time that day. "Yes, please!" {he} said.'))
    if s.chance(0.5):  # the activity is drawn only when the text shows it
        s.add(f"They decided to {s.c(*s.activities)} together.")
    else:
        s.add("They played until it was time to go home.")
    s.add(h.f("Soon {Name} and {friend} were best friends.", friend=f.name))
    s.moral((
        "everyone wants to have a friend",
        "a kind word can make someone's day",
        "it is good to include others who are alone",
    ))  # fmt: skip


def _plot_garden(s: Story) -> None:
    h = s.hero
    plant = s.c("sunflower", "tomato", "pumpkin", "bean", "rose", "carrot")
    s.add(h.f("{Name} found a tiny seed. {He} planted it in a pot by the window."))
    s.add(s.say(h, s.c(f"I hope it grows into a big {plant}!", "Grow, little seed, grow!")))
    s.add(h.f("Every day {he} gave the seed some water."))
    s.add(h.f("But the next day, nothing happened. And the day after that, nothing happened."))
    s.add(s.say(h, s.c("Why is it not growing?", "When will it grow?")))
    s.add(f'{h.p.his.capitalize()} {s.elder} said, "Good things take time. Be patient."')
    if h.trait in ("lazy",):
        s.add(h.f("Some days {Name} forgot, but then {he} remembered again."))
    s.add(h.f("{Name} kept watering the pot and waited."))
    s.add(h.f("One morning, {he} saw a small green leaf!"))
    s.add(h.f("Weeks later, the plant had grown into a beautiful {plant}.", plant=plant))
    s.add(h.f("{Name} was so happy that {he} danced around the room."))
    s.moral((
        "good things come to those who wait",
        "patience and care help things grow",
        "you must be patient when you want something to grow",
    ))  # fmt: skip


def _plot_noise(s: Story) -> None:
    h = s.hero
    room = s.c("the attic", "the garden shed", "the kitchen", "the closet", "the basement")
    sound = s.c(*NOISES)
    cause, fix = NOISES[sound]
    el, ep = s.elder, s.elder_p
    s.add(
        h.f("{time}, {Name} heard a strange noise coming from {room}.", time=s.c(*TIMES), room=room)
    )
    word = sound.capitalize()
    s.add(f"{word}! {word}! {word}!")
    if h.trait in ("shy", "lazy") or s.chance(0.3):
        s.add(h.f("{Name} was scared. {He} hid under {his} blanket."))
        s.add(s.say(h, s.c("Is it a monster?", "What is that noise?")))
        s.add(h.f("{He} ran to find {his} {el}.", el=el))
    else:
        s.add(h.f("{Name} wanted to find out what it was."))
        s.add(s.say(h, s.c("What is making that noise?", "I will find out what it is!")))
        s.add(h.f("{He} asked {his} {el} to come with {him}.", el=el))
    s.add(
        f'"Let\'s go and look together," said {h.p.his} {el}. {ep.he.capitalize()} took a lantern.'
    )
    s.add(f"They walked slowly to {room}. The noise got louder and louder.")
    s.add(h.f("{Name} opened the door and looked inside."))
    s.add(f"It was {cause}!")
    s.add(s.say(h, s.c("So that was the noise!", f"It was only a {sound}!")))
    s.add(f"{h.name} and {h.p.his} {el} laughed. Then they {fix}.")
    s.moral((
        "things are not so scary once you know what they are",
        "it is good to find out the truth instead of being afraid",
        "when you are scared, you can ask someone to help you",
    ))  # fmt: skip


def _plot_gift(s: Story) -> None:
    h, f = s.hero, s.friend
    gift, problem = s.c(
        ("a birthday card", "the rain made the paint run"),
        ("a little cake", "the cake fell on the floor and got squashed"),
        ("a paper crown", "the dog chewed one corner of the crown"),
        ("a clay cup", "the cup came out of the oven a bit crooked"),
        ("a drawing of the two of them", "the crayons broke and the sky was only half blue"),
    )  # fmt: skip
    s.add(h.f("Tomorrow was {friend}'s birthday.", friend=f.name))
    s.add(
        h.f(
            "{Name} wanted to give {friend} a special present, but {he} had no money.",
            friend=f.name,
        )
    )
    s.add(h.f("So {he} decided to make {gift}.", gift=gift))
    s.add(h.f("{He} worked on it all afternoon, and it looked beautiful."))
    s.add(f"But then {problem}.")
    s.add(s.say(h, s.c("Oh no! Now it is ruined!", "Now my present is not good enough!")))
    s.add(h.f("{Name} felt so sad that {he} almost did not go to the party."))
    s.add(h.f("But the next day {he} went anyway and gave {friend} the present.", friend=f.name))
    s.add(h.f('"I am sorry, it is not perfect," {he} said quietly.'))
    s.add(f.f('{Name} looked at it and smiled. "I love it! You made it just for me!"'))
    s.add(f.f("{Name} kept it on {his} shelf for a long time."))
    s.moral((
        "the best presents come from the heart",
        "a gift made with love does not have to be perfect",
        "what matters is the thought, not the thing",
    ))  # fmt: skip


def _plot_chores(s: Story) -> None:
    h, f = s.hero, s.friend
    el, ep = s.elder, s.elder_p
    s.add(h.f("{Name}'s room was very messy. There were toys and clothes everywhere."))
    s.add(f'{h.p.his.capitalize()} {el} said, "Please clean your room today."')
    s.add(s.say(h, s.c("I will do it later!", "But I want to play now!")))
    s.add(h.f("{He} did not clean {his} room. {He} played all day instead."))
    s.add(
        h.f(
            "The next morning, {friend} came to take {him} to {where}.",
            friend=f.name,
            where=s.where_(),
        )
    )
    s.add(
        h.f("{Name} wanted to bring {his} {obj}, but {he} could not find it anywhere.", obj=s.obj)
    )
    s.add(
        h.f(
            "{He} looked under the bed. {He} looked in the closet. The {obj} was not there.",
            obj=s.obj,
        )
    )
    s.add(s.say(f, s.c("Hurry up, or we will be late!", "Are you ready yet?")))
    s.add(h.f("Because {his} room was so messy, {he} had to stay home and look for it.", obj=s.obj))
    s.add(
        h.f("So {Name} started to clean. {He} put the toys in a box and the clothes in a drawer.")
    )
    s.add(h.f("Under a pile of socks, {he} found the {obj}!", obj=s.obj))
    s.add(f'When the room was clean, {h.p.his} {el} smiled. "Well done," {ep.he} said.')
    s.moral((
        "it is good to keep your things tidy",
        "it is better to do your work first and play later",
        "a clean room makes it easy to find your things",
    ))  # fmt: skip


PLOTS: tuple[Callable[[Story], None], ...] = (
    _plot_noise,
    _plot_gift,
    _plot_chores,
    _plot_lost,
    _plot_share,
    _plot_fear,
    _plot_help,
    _plot_honest,
    _plot_weather,
    _plot_race,
    _plot_practice,
    _plot_newfriend,
    _plot_garden,
)
