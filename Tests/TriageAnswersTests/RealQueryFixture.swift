// Real customer queries from the BANKING77 training split (/work/shared/data/banking77-oos/
// train.jsonl, CC BY 4.0) with the entities each one should yield, written by reading the query.
// Each expectation is [kind, normalised value, text as written], in the order they appear.
// The lines were picked with /tmp-only helper code: for each chosen substring, the shortest
// training query containing it, copied verbatim. A query may rightly yield nothing: a number
// with no currency ("for 500", "asked for 100"), a duration ("waiting for 3 days"), a region
// ("europe", "the eu"), or an ambiguous currency word ("pesos").

let realQueryFixture = #"""
{"q": "what was the $1 charge for on my statement?", "label": "extra_charge_on_statement", "entities": [["money", "$1.00", "$1"]]}
{"q": "why did you guys charge me an extra €1?", "label": "extra_charge_on_statement", "entities": [["money", "€1.00", "€1"]]}
{"q": "i was charged an extra pound.", "label": "extra_charge_on_statement", "entities": [["money", "£1.00", "an extra pound"]]}
{"q": "there is a charge for 1£ on my statement.  i do not think that i bought anything that costed 1£.  what is going on?", "label": "extra_charge_on_statement", "entities": [["money", "£1.00", "1£"], ["money", "£1.00", "1£"]]}
{"q": "why is there a 1 euro fee on my statement?", "label": "extra_charge_on_statement", "entities": [["money", "€1.00", "1 euro"]]}
{"q": "why is there a pending hold on one pound on my statement?", "label": "extra_charge_on_statement", "entities": [["money", "£1.00", "one pound"]]}
{"q": "there has been a charge pending on my account statement that i can't figue out it's for a dollar.", "label": "extra_charge_on_statement", "entities": [["money", "$1.00", "a dollar"]]}
{"q": "i wanted to know about a pending dollar that is on my statement.", "label": "extra_charge_on_statement", "entities": [["money", "$1.00", "a pending dollar"]]}
{"q": "i still have not received an answer as to why i was charged $1.00 in a transaction?", "label": "extra_charge_on_statement", "entities": [["money", "$1.00", "$1.00"]]}
{"q": "my statement shows and extra 1$ that was charged to it and i would like to know why.", "label": "extra_charge_on_statement", "entities": [["money", "$1.00", "1$"]]}
{"q": "there is an odd 1£ charge that appears as pending on my statement. what's the reason for that? i haven't purchased anything for a pound.", "label": "extra_charge_on_statement", "entities": [["money", "£1.00", "1£"], ["money", "£1.00", "a pound"]]}
{"q": "i see a charge of 1l i do not recognize on my statement", "label": "extra_charge_on_statement", "entities": []}
{"q": "atm only gave me $20 instead of $100", "label": "wrong_amount_of_cash_received", "entities": [["money", "$20.00", "$20"], ["money", "$100.00", "$100"]]}
{"q": "i tried to withdraw 50 pounds but it only gave me 30. where is the rest of my money?", "label": "wrong_amount_of_cash_received", "entities": [["money", "£50.00", "50 pounds"]]}
{"q": "atm is broken. it did not give me the full amount (30 pounds.)  i'm standing here with only 10 pounds and it's telling me it gave me 30 pounds. i need assistance now!", "label": "wrong_amount_of_cash_received", "entities": [["money", "£30.00", "30 pounds"], ["money", "£10.00", "10 pounds"], ["money", "£30.00", "30 pounds"]]}
{"q": "the atm i'm standing in front of only gave me 10 pounds rather than the 30 pounds i wanted. the app shows i took out 30 pounds also. what do i need to do to fix this?", "label": "wrong_amount_of_cash_received", "entities": [["money", "£10.00", "10 pounds"], ["money", "£30.00", "30 pounds"], ["money", "£30.00", "30 pounds"]]}
{"q": "i asked for 100 only got 80", "label": "wrong_amount_of_cash_received", "entities": []}
{"q": "how come when i asked for 100 it only gave me 20.00 in the app", "label": "wrong_amount_of_cash_received", "entities": []}
{"q": "my friend deposited $100 into my account, but it is not showing up!", "label": "balance_not_updated_after_cheque_or_cash_deposit", "entities": [["money", "$100.00", "$100"]]}
{"q": "i'm going on holiday to france for 6 weeks with my family and the cat, fluffy.  i just purchased €10,000 from a currency exchange to ensure we don't run short but there appears to be a fee.  what is this for?", "label": "card_payment_fee_charged", "entities": [["country", "France", "france"], ["money", "€10,000.00", "€10,000"]]}
{"q": "hi, i'm buying my son bertie a starter home in london.  i'm just trying to send the 5% deposit over to the agent. it's only £200,000 but seems to be throwing an error.  what is going on?  if i wait any longer the house prices might rise, can you look in to it please?", "label": "failed_transfer", "entities": [["money", "£200,000.00", "£200,000"]]}
{"q": "i need your help immediately.  there is a 500£ cash withdrawal that i know nothing about.  i think my account has become compromised.", "label": "cash_withdrawal_not_recognised", "entities": [["money", "£500.00", "500£"]]}
{"q": "i have my card here with me and someone has just made a withdrawal for 500. please help!", "label": "cash_withdrawal_not_recognised", "entities": []}
{"q": "i transferred 7,000 to a receiver outside the eu and they received a lesser amount than what i sent, unfortunately, now i must send an additional transfer to the receiver so that they can receive the full amount i initially sent.  i'm not sure why they received a lesser amount than what i initially sen, but can you please look into this and let me know what happened?", "label": "transfer_fee_charged", "entities": []}
{"q": "why does my transfer keep failing? i've tried 5 times and they all failed.", "label": "failed_transfer", "entities": []}
{"q": "my top-up was cancelled and i am writing to ask if i need to complete the 3d secure authentication section before i submit it.", "label": "top_up_reverted", "entities": []}
{"q": "can i exchange usd for gbp in your app?", "label": "exchange_via_app", "entities": [["currency", "USD", "usd"], ["currency", "GBP", "gbp"]]}
{"q": "how can i exchange gbp for aud?", "label": "exchange_via_app", "entities": [["currency", "GBP", "gbp"], ["currency", "AUD", "aud"]]}
{"q": "can i use this app to exchange between dollars and pounds?", "label": "exchange_via_app", "entities": [["currency", "USD", "dollars"], ["currency", "GBP", "pounds"]]}
{"q": "i need australian dollars instead of uk currency.", "label": "exchange_via_app", "entities": [["currency", "AUD", "australian dollars"], ["currency", "GBP", "uk currency"]]}
{"q": "are eur exchanges allowed?", "label": "fiat_currency_support", "entities": [["currency", "EUR", "eur"]]}
{"q": "i need to get some euros for my holiday. am i able to exchange some of my money?", "label": "exchange_via_app", "entities": [["currency", "EUR", "euros"]]}
{"q": "what is your exchange rate between uk pounds and russian rubles for my last transaction", "label": "card_payment_wrong_exchange_rate", "entities": [["currency", "GBP", "uk pounds"], ["currency", "RUB", "russian rubles"]]}
{"q": "the fee charged when i changed rubles into british pounds was too much.", "label": "card_payment_wrong_exchange_rate", "entities": [["currency", "RUB", "rubles"], ["currency", "GBP", "british pounds"]]}
{"q": "i question today's exchange rate for rubles into pounds. i was hoping for a better return.", "label": "card_payment_wrong_exchange_rate", "entities": [["date", "today", "today"], ["currency", "RUB", "rubles"], ["currency", "GBP", "pounds"]]}
{"q": "i want to get my salary deposited as pesos?", "label": "failed_transfer", "entities": []}
{"q": "can you convert to eur?", "label": "fiat_currency_support", "entities": [["currency", "EUR", "eur"]]}
{"q": "i need to urgently transfer something from china. how long will it approximately take?", "label": "transfer_timing", "entities": [["country", "China", "china"]]}
{"q": "how long will this transfer from europe take?", "label": "transfer_timing", "entities": []}
{"q": "i completed a transfer within the uk two days ago, but it is still not showing received.  i have verified the account number is correct already.  is there anything else i need to do or is there a problem?", "label": "transfer_not_received_by_recipient", "entities": [["country", "the United Kingdom", "uk"], ["date", "2 days ago", "two days ago"]]}
{"q": "i am wondering if international transfers take longer. i a made a transfer from france two days ago and believed it would be here already. please let me know when i will get it!", "label": "balance_not_updated_after_bank_transfer", "entities": [["country", "France", "france"], ["date", "2 days ago", "two days ago"]]}
{"q": "can i add funds  with a card from the united states", "label": "supported_cards_and_currencies", "entities": [["country", "the United States", "united states"]]}
{"q": "can i top up from a usa credit card", "label": "supported_cards_and_currencies", "entities": [["country", "the United States", "usa"]]}
{"q": "i have a us credit card, will you accept it?", "label": "supported_cards_and_currencies", "entities": [["country", "the United States", "us"]]}
{"q": "are cards from the us accepted?", "label": "supported_cards_and_currencies", "entities": [["country", "the United States", "us"]]}
{"q": "how long do i have to wait for a us transfer?", "label": "transfer_timing", "entities": [["country", "the United States", "us"]]}
{"q": "what is the estimated date for delivery to us?", "label": "oos", "entities": []}
{"q": "how can i change my pin even though i'm out of the country in austria at the moment?", "label": "change_pin", "entities": [["country", "Austria", "austria"]]}
{"q": "how do i add money from my amex card to top up", "label": "supported_cards_and_currencies", "entities": [["card_brand", "American Express", "amex"]]}
{"q": "i'd like to use my american express to place money into my account.", "label": "supported_cards_and_currencies", "entities": [["card_brand", "American Express", "american express"]]}
{"q": "can i use my mastercard to add money to my account", "label": "supported_cards_and_currencies", "entities": [["card_brand", "Mastercard", "mastercard"]]}
{"q": "can you send me a mastercard, instead of a visa?", "label": "visa_or_mastercard", "entities": [["card_brand", "Mastercard", "mastercard"], ["card_brand", "Visa", "visa"]]}
{"q": "i'd like to get a visa card, please.", "label": "visa_or_mastercard", "entities": [["card_brand", "Visa", "visa"]]}
{"q": "i'm trying to use my apple watch to top up my google pay. do i need a special app?", "label": "apple_pay_or_google_pay", "entities": [["wallet", "Google Pay", "google pay"]]}
{"q": "i need to top up, can i use google pay?", "label": "apple_pay_or_google_pay", "entities": [["wallet", "Google Pay", "google pay"]]}
{"q": "unable to use my american express with apple pay to top up my account", "label": "apple_pay_or_google_pay", "entities": [["card_brand", "American Express", "american express"], ["wallet", "Apple Pay", "apple pay"]]}
{"q": "where is the card i ordered 2 weeks ago?", "label": "card_arrival", "entities": [["date", "2 weeks ago", "2 weeks ago"]]}
{"q": "if i ordered my new card last week, how much longer should i wait to receive it?", "label": "card_arrival", "entities": [["date", "last week", "last week"]]}
{"q": "i made a top up yesterday but it's still pending.", "label": "cancel_transfer", "entities": [["date", "yesterday", "yesterday"]]}
{"q": "why is the check i deposited this morning not showing up?", "label": "balance_not_updated_after_cheque_or_cash_deposit", "entities": [["date", "this morning", "this morning"]]}
{"q": "i submitted a cheque couple of days ago, nothing happened to my account yet.what could be the possible issue?", "label": "balance_not_updated_after_cheque_or_cash_deposit", "entities": [["date", "a couple of days ago", "couple of days ago"]]}
{"q": "why hasn't my balance been updated? i've deposited a few cheques some days ago!", "label": "balance_not_updated_after_cheque_or_cash_deposit", "entities": [["date", "some days ago", "some days ago"]]}
{"q": "i have a new card and i can't add money to it.  i tried about 30 minutes ago and it is still pending.  what do i do?", "label": "pending_top_up", "entities": [["date", "30 minutes ago", "30 minutes ago"]]}
{"q": "i ordered something online a while ago and i haven't gotten it. i would like a refund.", "label": "request_refund", "entities": [["date", "a while ago", "a while ago"]]}
{"q": "i've been waiting for 3 days, why is my withdrawal still pending?", "label": "pending_cash_withdrawal", "entities": []}
{"q": "i don't have my card in 1 week.  should i be worried?", "label": "card_arrival", "entities": []}
{"q": "i feel as though i have been over charged for the exchange rate on my payment on last saturday.", "label": "card_payment_wrong_exchange_rate", "entities": [["date", "last saturday", "last saturday"]]}
"""#
