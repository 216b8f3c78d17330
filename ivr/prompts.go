package ivr

import (
	"fmt"
	"strings"

	"github.com/ivr/callerverify/ciba"
	"github.com/ivr/callerverify/internal/store"
)

// Languages the IVR speaks.
const (
	Swedish   = "sv-SE"
	Norwegian = "nb-NO"
	English   = "en-US"
)

// voices maps a language to its explicit Twilio voice: the Console's
// account default must never decide how the IVR sounds.
var voices = map[string]string{
	Swedish:   "Polly.Elin-Neural",
	Norwegian: "Polly.Ida-Neural",
	English:   "Polly.Joanna-Neural",
}

// Languages are the languages the IVR speaks, as IVR_LANGUAGE names them.
var Languages = []string{Swedish, Norwegian, English}

// CheckLanguage returns an error that names the languages there are when
// the IVR has no prompts in lang.
func CheckLanguage(lang string) error {
	if _, ok := voices[lang]; !ok {
		return fmt.Errorf("unknown language %q: use %s", lang, strings.Join(Languages, ", "))
	}
	return nil
}

// Prompt keys.
const (
	pGreeting       = "greeting"
	pAskNumber      = "ask_number"
	pEmpty          = "empty"
	pLength         = "length"
	pDate           = "date"
	pChecksum       = "checksum"
	pTryAgain       = "try_again"
	pTooMany        = "too_many"
	pStarting       = "starting"
	pOpenBankIDSE   = "open_bankid_se"
	pWordPairIntro  = "word_pair_intro"
	pWordPairRepeat = "word_pair_repeat"
	pWordPairHint   = "word_pair_hint"
	pStillWaitingSE = "still_waiting_se"
	pStillWaiting   = pStillWaitingSE // the same wait, in neutral words at other brokers
	pStillWaitingNO = "still_waiting_no"
	pRepeatHintSE   = "repeat_hint_se"
	pVerified       = "verified"
	pVerifiedNoName = "verified_no_name"
	pDeclined       = "declined"
	pExpired        = "expired"
	pUnknownUser    = "unknown_user"
	pFailed         = "failed"
	pCancelled      = "cancelled"
	pOfferRetry     = "offer_retry"
	pConnecting     = "connecting"
	pNoAgent        = "no_agent"
	pFallback       = "fallback"
	pWhisperOK      = "whisper_verified"
	pWhisperNo      = "whisper_unverified"
	pBinding        = "binding_message"
	pRateLimited    = "rate_limited"
	pGoodbye        = "goodbye"
	pBindingCode    = "binding_code"
	pAskCustomer    = "ask_customer"
	pLengthCustomer = "length_customer"
	pCheckCustomer  = "checksum_customer"
	pMenuCallerID   = "menu_caller_id"
	pMenuCustomer   = "menu_customer"
	pMenuAgain      = "menu_again"
	pGuardian       = "guardian"
	pMosaicLink     = "mosaic_link"
	pApproveCode    = "approve_code"
	pStillCode      = "still_waiting_code"
	pWithheld       = "withheld"
)

// prompts holds every sentence the IVR says, per language. "{name}" is
// replaced by the caller's first name.
var prompts = map[string]map[string]string{
	Swedish: {
		pGreeting:       "Välkommen till kundtjänst. Innan vi kopplar dig vidare vill vi bekräfta vem du är med BankID.",
		pAskNumber:      "Knappa in ditt personnummer med tolv siffror och avsluta med fyrkant.",
		pEmpty:          "Jag hörde inga siffror.",
		pLength:         "Numret har fel antal siffror. Ett svenskt personnummer har tolv siffror, ett norskt personnummer elva.",
		pDate:           "Födelsedatumet i numret stämmer inte.",
		pChecksum:       "Numret stämmer inte. Kontrollera att du knappade rätt.",
		pTryAgain:       "Försök igen.",
		pTooMany:        "Vi kunde tyvärr inte ta emot ditt personnummer.",
		pStarting:       "Ett ögonblick, vi kontaktar BankID.",
		pOpenBankIDSE:   "Öppna BankID-appen i din telefon och bekräfta att du pratar med oss. Stanna kvar i samtalet så länge.",
		pWordPairIntro:  "Öppna BankID-appen och välj det ordpar du hör nu.",
		pWordPairRepeat: "Jag upprepar.",
		pWordPairHint:   "Tryck på valfri knapp för att höra orden igen.",
		pStillWaitingSE: "Vi väntar fortfarande på att du bekräftar i BankID-appen.",
		pStillWaitingNO: "Vi väntar fortfarande. Välj det här ordparet i BankID-appen.",
		pRepeatHintSE:   "Tryck på valfri knapp för att höra det här igen.",
		pVerified:       "Tack, {name}. Nu vet vi att det är du.",
		pVerifiedNoName: "Tack, nu vet vi att det är du.",
		pDeclined:       "Identifieringen avbröts i BankID.",
		pExpired:        "Tiden för identifieringen gick ut.",
		pUnknownUser:    "Vi hittar inget BankID för det numret.",
		pFailed:         "Vi når tyvärr inte BankID just nu.",
		pCancelled:      "Identifieringen avbröts.",
		pOfferRetry:     "Tryck [1] för att försöka igen, eller vänta kvar så kopplar vi dig till en medarbetare.",
		pConnecting:     "Du kopplas nu till en medarbetare.",
		pNoAgent:        "Tyvärr kunde ingen svara just nu. Välkommen att ringa igen senare.",
		pFallback:       "Tyvärr har vi ett tekniskt fel just nu.",
		pWhisperOK:      "Verifierad kund: {name}.",
		pWhisperNo:      "Kunden är inte verifierad.",
		pBinding:        "Samtal med kundtjänst",
		pRateLimited:    "Vi har redan skickat flera BankID-förfrågningar på kort tid, så vi skickar ingen ny just nu. En medarbetare hjälper dig i stället.",
		pGoodbye:        "Det här samtalet är avslutat. Hej då.",
		pBindingCode:    "Kod",
		pAskCustomer:    "Knappa in ditt kundnummer och avsluta med fyrkant.",
		pLengthCustomer: "Kundnumret har fel antal siffror.",
		pCheckCustomer:  "Kundnumret stämmer inte. Kontrollera att du knappade rätt.",
		pMenuCallerID:   "Tryck [1] så skickar vi en förfrågan till telefonen du ringer från.",
		pMenuCustomer:   "Tryck [2] för att knappa in ditt kundnummer i stället.",
		pMenuAgain:      "Jag uppfattade inget val.",
		pGuardian:       "Vi har skickat en förfrågan till Guardian-appen i din telefon. Kontrollera att den visar koden [{code}] och godkänn den. Stanna kvar i samtalet så länge.",
		pMosaicLink:     "Vi har skickat ett sms med en länk. Öppna länken, logga in och godkänn förfrågan. Sidan visar koden [{code}]. Stanna kvar i samtalet så länge.",
		pApproveCode:    "Godkänn förfrågan i din telefon. Den visar koden [{code}]. Stanna kvar i samtalet så länge.",
		pStillCode:      "Vi väntar fortfarande på att du godkänner förfrågan med koden [{code}].",
		pWithheld:       "Vi ser inte numret du ringer från, så vi kan inte skicka någon förfrågan.",
	},
	Norwegian: {
		pGreeting:       "Velkommen til kundeservice. Før vi setter deg over, vil vi bekrefte hvem du er med BankID.",
		pAskNumber:      "Tast inn fødselsnummeret ditt, elleve siffer, og avslutt med firkant.",
		pEmpty:          "Jeg hørte ingen siffer.",
		pLength:         "Nummeret har feil antall siffer. Et norsk fødselsnummer har elleve siffer, et svensk personnummer tolv.",
		pDate:           "Fødselsdatoen i nummeret stemmer ikke.",
		pChecksum:       "Nummeret stemmer ikke. Sjekk at du tastet riktig.",
		pTryAgain:       "Prøv igjen.",
		pTooMany:        "Vi klarte dessverre ikke å ta imot fødselsnummeret ditt.",
		pStarting:       "Et øyeblikk, vi kontakter BankID.",
		pOpenBankIDSE:   "Åpne BankID-appen på telefonen og bekreft at du snakker med oss. Bli værende i samtalen så lenge.",
		pWordPairIntro:  "Åpne BankID-appen og velg ordparet du hører nå.",
		pWordPairRepeat: "Jeg gjentar.",
		pWordPairHint:   "Trykk på en hvilken som helst tast for å høre ordene igjen.",
		pStillWaitingSE: "Vi venter fortsatt på at du bekrefter i BankID-appen.",
		pStillWaitingNO: "Vi venter fortsatt. Velg dette ordparet i BankID-appen.",
		pRepeatHintSE:   "Trykk på en hvilken som helst tast for å høre dette igjen.",
		pVerified:       "Takk, {name}. Nå vet vi at det er deg.",
		pVerifiedNoName: "Takk, nå vet vi at det er deg.",
		pDeclined:       "Identifiseringen ble avbrutt i BankID.",
		pExpired:        "Tiden for identifiseringen gikk ut.",
		pUnknownUser:    "Vi finner ingen BankID for dette nummeret.",
		pFailed:         "Vi får dessverre ikke kontakt med BankID akkurat nå.",
		pCancelled:      "Identifiseringen ble avbrutt.",
		pOfferRetry:     "Trykk [1] for å prøve igjen, eller vent, så setter vi deg over til en medarbeider.",
		pConnecting:     "Du blir nå satt over til en medarbeider.",
		pNoAgent:        "Dessverre kunne ingen svare akkurat nå. Du er velkommen til å ringe igjen senere.",
		pFallback:       "Beklager, vi har en teknisk feil akkurat nå.",
		pWhisperOK:      "Bekreftet innringer: {name}.",
		pWhisperNo:      "Innringeren er ikke bekreftet.",
		pBinding:        "Samtale med kundeservice",
		pRateLimited:    "Vi har allerede sendt flere BankID-forespørsler på kort tid, så vi sender ingen ny akkurat nå. En medarbeider hjelper deg i stedet.",
		pGoodbye:        "Denne samtalen er avsluttet. Ha det bra.",
		pBindingCode:    "Kode",
		pAskCustomer:    "Tast inn kundenummeret ditt, og avslutt med firkant.",
		pLengthCustomer: "Kundenummeret har feil antall siffer.",
		pCheckCustomer:  "Kundenummeret stemmer ikke. Sjekk at du tastet riktig.",
		pMenuCallerID:   "Trykk [1], så sender vi en forespørsel til telefonen du ringer fra.",
		pMenuCustomer:   "Trykk [2] for å taste inn kundenummeret ditt i stedet.",
		pMenuAgain:      "Jeg fikk ikke med meg noe valg.",
		pGuardian:       "Vi har sendt en forespørsel til Guardian-appen på telefonen din. Sjekk at den viser koden [{code}], og godkjenn den. Bli værende i samtalen så lenge.",
		pMosaicLink:     "Vi har sendt en tekstmelding med en lenke. Åpne lenken, logg inn og godkjenn forespørselen. Siden viser koden [{code}]. Bli værende i samtalen så lenge.",
		pApproveCode:    "Godkjenn forespørselen på telefonen din. Den viser koden [{code}]. Bli værende i samtalen så lenge.",
		pStillCode:      "Vi venter fortsatt på at du godkjenner forespørselen med koden [{code}].",
		pWithheld:       "Vi ser ikke nummeret du ringer fra, så vi kan ikke sende noen forespørsel.",
	},
	English: {
		pGreeting:       "Welcome to customer service. Before we put you through, we'd like to confirm who you are with BankID.",
		pAskNumber:      "Please enter your personal identity number, followed by the pound key.",
		pEmpty:          "I didn't hear any digits.",
		pLength:         "That number has the wrong number of digits. A Swedish personal identity number has twelve digits, a Norwegian one eleven.",
		pDate:           "The date of birth in that number isn't valid.",
		pChecksum:       "That number doesn't add up. Please check that you typed it correctly.",
		pTryAgain:       "Please try again.",
		pTooMany:        "Sorry, we couldn't take your identity number.",
		pStarting:       "One moment, we're contacting BankID.",
		pOpenBankIDSE:   "Please open the BankID app on your phone and confirm that you're talking to us. Stay on the line while you do.",
		pWordPairIntro:  "Please open the BankID app and choose the word pair you're about to hear.",
		pWordPairRepeat: "Once more.",
		pWordPairHint:   "Press any key to hear the words again.",
		pStillWaitingSE: "We're still waiting for you to confirm in the BankID app.",
		pStillWaitingNO: "We're still waiting. Choose this word pair in the BankID app.",
		pRepeatHintSE:   "Press any key to hear this again.",
		pVerified:       "Thank you, {name}. You're verified.",
		pVerifiedNoName: "Thank you. You're verified.",
		pDeclined:       "The identification was cancelled in BankID.",
		pExpired:        "The identification timed out.",
		pUnknownUser:    "We couldn't find a BankID for that number.",
		pFailed:         "Sorry, we can't reach BankID right now.",
		pCancelled:      "The identification was cancelled.",
		pOfferRetry:     "Press [1] to try again, or stay on the line and we'll put you through to an agent.",
		pConnecting:     "We're putting you through to an agent now.",
		pNoAgent:        "Sorry, nobody could take your call right now. Please call again later.",
		pFallback:       "Sorry, we're having a technical problem.",
		pWhisperOK:      "Verified caller: {name}.",
		pWhisperNo:      "The caller is not verified.",
		pBinding:        "Call with customer service",
		pRateLimited:    "We've already sent several BankID requests in a short time, so we won't send another one right now. An agent will help you instead.",
		pGoodbye:        "This call has ended. Goodbye.",
		pBindingCode:    "Code",
		pAskCustomer:    "Please enter your customer number, followed by the pound key.",
		pLengthCustomer: "That customer number has the wrong number of digits.",
		pCheckCustomer:  "That customer number doesn't add up. Please check that you typed it correctly.",
		pMenuCallerID:   "To get an approval request on the phone you're calling from, press [1].",
		pMenuCustomer:   "To type your customer number instead, press [2].",
		pMenuAgain:      "I didn't catch a choice.",
		pGuardian:       "We've sent a request to the Guardian app on your phone. Check that it shows the code [{code}], and approve it. Stay on the line while you do.",
		pMosaicLink:     "We've sent you a text message with a link. Open it, sign in and approve the request; the page shows the code [{code}]. Stay on the line while you do.",
		pApproveCode:    "Please approve the request on your phone. It shows the code [{code}]. Stay on the line while you do.",
		pStillCode:      "We're still waiting for you to approve the request with the code [{code}].",
		pWithheld:       "We can't see the number you're calling from, so we can't send you a request.",
	},
}

// neutral are the sentences that name BankID, as they are said for other
// brokers (Auth0, Transmit, generic CIBA), where the caller approves a
// request of ours in some other app or page.
var neutral = map[string]map[string]string{
	Swedish: {
		pGreeting:     "Välkommen till kundtjänst. Innan vi kopplar dig vidare vill vi bekräfta vem du är.",
		pStarting:     "Ett ögonblick, vi skickar en förfrågan.",
		pDeclined:     "Förfrågan godkändes inte.",
		pUnknownUser:  "Vi hittar ingen användare med det numret.",
		pFailed:       "Vi når tyvärr inte inloggningstjänsten just nu.",
		pRateLimited:  "Vi har redan skickat flera förfrågningar på kort tid, så vi skickar ingen ny just nu. En medarbetare hjälper dig i stället.",
		pStillWaiting: "Vi väntar fortfarande på att du godkänner förfrågan.",
	},
	Norwegian: {
		pGreeting:     "Velkommen til kundeservice. Før vi setter deg over, vil vi bekrefte hvem du er.",
		pStarting:     "Et øyeblikk, vi sender en forespørsel.",
		pDeclined:     "Forespørselen ble ikke godkjent.",
		pUnknownUser:  "Vi finner ingen bruker med det nummeret.",
		pFailed:       "Vi får dessverre ikke kontakt med innloggingstjenesten akkurat nå.",
		pRateLimited:  "Vi har allerede sendt flere forespørsler på kort tid, så vi sender ingen ny akkurat nå. En medarbeider hjelper deg i stedet.",
		pStillWaiting: "Vi venter fortsatt på at du godkjenner forespørselen.",
	},
	English: {
		pGreeting:     "Welcome to customer service. Before we put you through, we'd like to confirm who you are.",
		pStarting:     "One moment, we're sending you a request.",
		pDeclined:     "The request wasn't approved.",
		pUnknownUser:  "We couldn't find you with that number.",
		pFailed:       "Sorry, we can't reach the sign-in service right now.",
		pRateLimited:  "We've already sent several requests in a short time, so we won't send another one right now. An agent will help you instead.",
		pStillWaiting: "We're still waiting for you to approve the request.",
	},
}

// p is the sentence key in lang as this service says it: BankID's words at
// Idura, neutral ones elsewhere.
func (s *Service) p(lang, key string) string {
	if s.cfg.Profile != nil && s.cfg.Profile.LoginHint != ciba.HintSubSSN {
		if t, ok := neutral[lang][key]; ok {
			return t
		}
	}
	return prompt(lang, key, "")
}

// prompt returns the sentence key in lang, with {name} filled in.
func prompt(lang, key, name string) string {
	t, ok := prompts[lang][key]
	if !ok {
		t = prompts[English][key]
	}
	return strings.ReplaceAll(t, "{name}", name)
}

// failureKey is what the caller is told about why they are not verified.
func failureKey(r store.Reason) string {
	switch r {
	case store.ReasonDeclined:
		return pDeclined
	case store.ReasonExpired:
		return pExpired
	case store.ReasonUnknownUser:
		return pUnknownUser
	case store.ReasonBrokerUnreachable, store.ReasonFailed:
		return pFailed
	case store.ReasonHungUp:
		return pCancelled
	case store.ReasonInvalidNumber:
		return pTooMany
	case store.ReasonRateLimited:
		return pRateLimited
	case store.ReasonWithheld:
		return pWithheld
	}
	return ""
}
