package cibatest

import "math/rand/v2"

// Norwegian word pairs like Idura's "Frekk Julekos": an adjective in its
// base form and a masculine (or common-gender) noun, so the pair agrees.
var (
	adjectives = [...]string{
		"Frekk", "Glad", "Rask", "Stille", "Modig", "Snill", "Lun", "Klok",
		"Varm", "Kald", "Blid", "Sterk", "Myk", "Søt", "Rund", "Lang",
		"Høy", "Ny", "Grønn", "Blå", "Gul", "Rød", "Hvit", "Brun",
		"Grå", "Våken", "Trøtt", "Sprø", "Lett", "Morsom", "Fin", "Sjelden",
	}
	nouns = [...]string{
		"Julekos", "Elg", "Hval", "Laks", "Bjørn", "Rev", "Ulv", "Hare",
		"Måke", "Ørn", "Båt", "Stol", "Hatt", "Ost", "Kake", "Måne",
		"Stjerne", "Skog", "Bekk", "Fjord", "Sykkel", "Genser", "Vott", "Lue",
		"Kopp", "Bolle", "Vaffel", "Pølse", "Gulrot", "Potet", "Løk", "Trøye",
	}
)

// wordPairs returns the right pair and three distinct choices containing
// it, shuffled.
func wordPairs() (right string, choices []string) {
	seen := map[string]bool{}
	for len(choices) < 3 {
		p := adjectives[rand.IntN(len(adjectives))] + " " + nouns[rand.IntN(len(nouns))]
		if seen[p] {
			continue
		}
		seen[p] = true
		choices = append(choices, p)
	}
	right = choices[0]
	rand.Shuffle(len(choices), func(i, j int) { choices[i], choices[j] = choices[j], choices[i] })
	return right, choices
}
