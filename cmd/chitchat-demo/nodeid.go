package main

import (
	"crypto/rand"
	"strings"
)

// memorableID returns a random hyphenated id such as
// "honest-turbo-tailor-gregory": adjective, adjective, noun, first name, in
// the spirit of upstream's cool-id-generator (Size::Medium). Every list has
// exactly 64 words, so a byte of randomness picks a word without bias; the
// four picks give 2^24 ids, plenty for the public-address prefix they follow.
func memorableID() string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand failed: " + err.Error()) // never fails on supported platforms
	}
	lists := [4]*[64]string{&adjectives, &qualifiers, &nouns, &names}
	words := make([]string, len(lists))
	for i, l := range lists {
		words[i] = l[b[i]%64]
	}
	return strings.Join(words, "-")
}

var adjectives = [64]string{
	"able", "agile", "amber", "ancient", "bold", "brave", "bright", "brisk",
	"calm", "clever", "cosmic", "crisp", "curious", "daring", "eager", "early",
	"fancy", "fearless", "fluffy", "frank", "gentle", "giant", "glad", "golden",
	"grand", "happy", "hardy", "honest", "humble", "jolly", "keen", "kind",
	"lively", "lucky", "merry", "mighty", "modest", "neat", "nimble", "noble",
	"polite", "proud", "quick", "quiet", "rapid", "ready", "rustic", "shiny",
	"silent", "sleek", "smart", "snowy", "solid", "steady", "sturdy", "sunny",
	"swift", "tidy", "trusty", "upbeat", "vivid", "warm", "wise", "witty",
}

var qualifiers = [64]string{
	"acoustic", "atomic", "binary", "cobalt", "copper", "crimson", "crystal", "cyber",
	"delta", "digital", "electric", "emerald", "epic", "fuzzy", "galactic", "gamma",
	"glossy", "granite", "hyper", "indigo", "ionic", "jade", "laser", "lunar",
	"magnetic", "marble", "mega", "micro", "neon", "nova", "omega", "onyx",
	"orbital", "pixel", "plasma", "polar", "prime", "quantum", "radiant", "retro",
	"robotic", "ruby", "scarlet", "silver", "solar", "sonic", "stellar", "super",
	"teal", "thermal", "titanium", "turbo", "ultra", "velvet", "violet", "virtual",
	"vintage", "wireless", "zen", "zinc", "auburn", "arctic", "azure", "basalt",
}

var nouns = [64]string{
	"acrobat", "admiral", "archer", "artist", "astronaut", "baker", "barber", "bard",
	"beekeeper", "builder", "captain", "carpenter", "chef", "chemist", "clerk", "coach",
	"courier", "dancer", "detective", "diver", "doctor", "drummer", "editor", "farmer",
	"fisher", "gardener", "glazier", "guide", "hunter", "inventor", "jeweler", "juggler",
	"knight", "librarian", "mason", "mechanic", "miner", "navigator", "painter", "pilot",
	"piper", "poet", "potter", "ranger", "sailor", "scholar", "scout", "sculptor",
	"shepherd", "singer", "smith", "surveyor", "tailor", "teacher", "tinker", "trader",
	"traveler", "tutor", "valet", "weaver", "welder", "wizard", "writer", "yodeler",
}

var names = [64]string{
	"ada", "alan", "alice", "amelia", "anna", "arthur", "barbara", "bob",
	"carla", "charles", "chloe", "dennis", "diana", "edgar", "edith", "emma",
	"felix", "frances", "george", "grace", "gregory", "hannah", "harold", "hedy",
	"ida", "isaac", "jack", "jane", "john", "julia", "karen", "ken",
	"laura", "leslie", "linus", "lucy", "margaret", "marie", "martin", "mary",
	"nancy", "niklaus", "olga", "oscar", "pablo", "paula", "peter", "radia",
	"rita", "robert", "rosa", "sophie", "stefan", "susan", "thomas", "tim",
	"ursula", "victor", "vint", "wendy", "xavier", "yvonne", "zoe", "zora",
}
