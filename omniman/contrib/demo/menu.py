"""The demo café-restaurant: categories and about forty products over three stations."""

from __future__ import annotations

# code, name, sort order
CATEGORIES = [
    ("coffee", "Coffee", 1),
    ("drinks", "Cold drinks", 2),
    ("breakfast", "Breakfast", 3),
    ("mains", "Mains", 4),
    ("sides", "Sides", 5),
    ("pastry", "Pastry", 6),
    ("desserts", "Desserts", 7),
]

# sku, name, category, price_q, station, barcode, stock on hand (None: not tracked)
PRODUCTS = [
    ("ESP", "Espresso", "coffee", 600, "bar", "7890000000011", None),
    ("DOPPIO", "Doppio", "coffee", 850, "bar", "7890000000028", None),
    ("MACCH", "Macchiato", "coffee", 750, "bar", "7890000000035", None),
    ("CAP", "Cappuccino", "coffee", 950, "bar", "7890000000042", None),
    ("LATTE", "Caffè latte", "coffee", 1050, "bar", "7890000000059", None),
    ("FLATW", "Flat white", "coffee", 1100, "bar", "7890000000066", None),
    ("MOCHA", "Mocha", "coffee", 1200, "bar", "7890000000073", None),
    ("CHAI", "Chai latte", "coffee", 1150, "bar", "7890000000080", 6),
    ("OATM", "Oat milk (extra)", "coffee", 300, "bar", "7890000000097", 4),
    ("OJ", "Fresh orange juice", "drinks", 1200, "bar", "7890000000103", 12),
    ("LEMON", "Lemonade", "drinks", 900, "bar", "7890000000110", 20),
    ("ICETEA", "Iced tea", "drinks", 850, "bar", "7890000000127", 18),
    ("SODA", "Soda can", "drinks", 700, "bar", "7890000000134", 48),
    ("WATER", "Still water", "drinks", 500, "bar", "7890000000141", 60),
    ("SPARK", "Sparkling water", "drinks", 550, "bar", "7890000000158", 3),
    ("KOMBU", "Kombucha", "drinks", 1400, "bar", "7890000000165", 0),
    ("TOAST", "Sourdough toast & butter", "breakfast", 1400, "kitchen", "7890000000172", None),
    ("AVO", "Avocado toast", "breakfast", 2900, "kitchen", "7890000000189", 9),
    ("EGGS", "Scrambled eggs", "breakfast", 2400, "kitchen", "7890000000196", 30),
    ("BENNY", "Eggs Benedict", "breakfast", 3400, "kitchen", "7890000000202", 2),
    ("GRANOLA", "Granola bowl", "breakfast", 2200, "kitchen", "7890000000219", 14),
    ("PANCAKE", "Pancakes", "breakfast", 2600, "kitchen", "7890000000226", 11),
    ("BURG", "Burger", "mains", 3200, "kitchen", "7890000000233", 25),
    ("VBURG", "Veggie burger", "mains", 3100, "kitchen", "7890000000240", 4),
    ("CHICK", "Grilled chicken", "mains", 3800, "kitchen", "7890000000257", 15),
    ("RISOT", "Mushroom risotto", "mains", 4200, "kitchen", "7890000000264", 3),
    ("SALMON", "Salmon bowl", "mains", 4900, "kitchen", "7890000000271", 1),
    ("CAESAR", "Caesar salad", "mains", 3300, "kitchen", "7890000000288", 12),
    ("SOUP", "Soup of the day", "mains", 2300, "kitchen", "7890000000295", 8),
    ("FRIES", "Fries", "sides", 1400, "kitchen", "7890000000301", 40),
    ("SWFRIES", "Sweet potato fries", "sides", 1700, "kitchen", "7890000000318", 5),
    ("SALAD", "Side salad", "sides", 1200, "kitchen", "7890000000325", 20),
    ("PDQ", "Pão de queijo", "pastry", 700, "pastry", "7890000000332", 36),
    ("CRO", "Croissant", "pastry", 1100, "pastry", "7890000000349", 7),
    ("PAINCH", "Pain au chocolat", "pastry", 1250, "pastry", "7890000000356", 2),
    ("CINN", "Cinnamon roll", "pastry", 1300, "pastry", "7890000000363", 9),
    ("BANANA", "Banana bread", "pastry", 1150, "pastry", "7890000000370", 6),
    ("BROWNIE", "Brownie", "desserts", 1300, "pastry", "7890000000387", 10),
    ("CHEESE", "Cheesecake slice", "desserts", 1800, "pastry", "7890000000394", 3),
    ("TIRAMI", "Tiramisu", "desserts", 1900, "pastry", "7890000000400", 0),
    ("GELATO", "Gelato cup", "desserts", 1100, "pastry", "7890000000417", 16),
]

# sku → skus offered instead when it runs out
ALTERNATIVES = {
    "KOMBU": ["ICETEA", "LEMON"],
    "SPARK": ["WATER"],
    "BENNY": ["EGGS"],
    "SALMON": ["CHICK", "CAESAR"],
    "RISOT": ["SOUP"],
    "VBURG": ["BURG"],
    "SWFRIES": ["FRIES"],
    "PAINCH": ["CRO"],
    "TIRAMI": ["CHEESE", "BROWNIE"],
    "CHEESE": ["BROWNIE"],
    "OATM": [],
}
