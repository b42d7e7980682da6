"""Fixed vocabularies of the demo data: countries, cities, names, products, campaigns."""

from __future__ import annotations

import numpy as np

# country, weight, phone prefix, cities (first is the most common)
COUNTRIES: list[tuple[str, float, str, list[str]]] = [
    ("US", 0.28, "+1", ["New York", "San Francisco", "Chicago", "Austin"]),
    ("IN", 0.14, "+91", ["Bengaluru", "Mumbai", "Delhi", "Pune"]),
    ("GB", 0.10, "+44", ["London", "Manchester", "Edinburgh"]),
    ("DE", 0.10, "+49", ["Berlin", "Munich", "Hamburg"]),
    ("BR", 0.08, "+55", ["São Paulo", "Rio de Janeiro", "Belo Horizonte"]),
    ("FR", 0.07, "+33", ["Paris", "Lyon", "Marseille"]),
    ("JP", 0.06, "+81", ["Tokyo", "Osaka", "Yokohama"]),
    ("CA", 0.06, "+1", ["Toronto", "Vancouver", "Montreal"]),
    ("AU", 0.04, "+61", ["Sydney", "Melbourne"]),
    ("ES", 0.04, "+34", ["Madrid", "Barcelona"]),
    ("NL", 0.03, "+31", ["Amsterdam", "Rotterdam"]),
]
# share of a country's users in its first, second, ... city
CITY_SHARES = np.array([0.5, 0.25, 0.15, 0.10])

FIRST_NAMES = [
    "Emma",
    "Liam",
    "Olivia",
    "Noah",
    "Ava",
    "Lucas",
    "Mia",
    "Arjun",
    "Priya",
    "Sofia",
    "Hugo",
    "Lea",
    "Yuki",
    "Haruto",
    "Ana",
    "Pedro",
    "Chloe",
    "Ethan",
    "Isabella",
    "Mateo",
    "Aisha",
    "Omar",
    "Hannah",
    "Felix",
    "Zoe",
    "Leon",
    "Maya",
    "Ravi",
    "Camille",
    "Jonas",
]
LAST_NAMES = [
    "Smith",
    "Patel",
    "Müller",
    "Silva",
    "Martin",
    "Tanaka",
    "Johnson",
    "Garcia",
    "Brown",
    "Sharma",
    "Schmidt",
    "Santos",
    "Dubois",
    "Sato",
    "Wilson",
    "Lopez",
    "Taylor",
    "Kumar",
    "Fischer",
    "Costa",
    "Bernard",
    "Suzuki",
    "Lee",
    "Walker",
    "Nguyen",
    "Rossi",
]
EMAIL_DOMAINS = ["gmail.com", "company.com", "outlook.com", "yahoo.com", "icloud.com", "proton.me"]
EMAIL_DOMAIN_P = np.array([0.42, 0.18, 0.16, 0.12, 0.08, 0.04])
GENDERS = ["female", "male", "non-binary", "unspecified"]
GENDER_P = np.array([0.48, 0.47, 0.02, 0.03])

OS_LIST = ["iOS", "Android", "Windows", "macOS", "Linux"]
OS_P = np.array([0.30, 0.30, 0.25, 0.12, 0.03])
BROWSERS = ["Chrome", "Safari", "Firefox", "Edge", "Samsung Internet"]
# browser probabilities per os (rows follow OS_LIST)
BROWSER_P = np.array(
    [
        [0.20, 0.78, 0.02, 0.00, 0.00],
        [0.70, 0.00, 0.05, 0.00, 0.25],
        [0.60, 0.00, 0.12, 0.28, 0.00],
        [0.40, 0.52, 0.08, 0.00, 0.00],
        [0.55, 0.00, 0.45, 0.00, 0.00],
    ]
)
DEVICE_TYPES = ["mobile", "desktop", "tablet"]

DEPARTMENTS = ["Product", "Engineering", "Sales", "Marketing", "Finance", "Operations", "Support"]
SENIORITIES = ["Junior", "Associate", "Senior", "Lead", "Head of"]
SENIORITY_P = np.array([0.22, 0.20, 0.30, 0.18, 0.10])
ROLES = {
    "Product": "Product Manager",
    "Engineering": "Software Engineer",
    "Sales": "Account Executive",
    "Marketing": "Marketing Manager",
    "Finance": "Financial Analyst",
    "Operations": "Operations Manager",
    "Support": "Support Specialist",
}
PLANS = ["free", "trial", "pro", "enterprise"]
PLAN_P = np.array([0.55, 0.15, 0.24, 0.06])

# product, category, base price
PRODUCTS: list[tuple[str, str, float]] = [
    ('Smart TV 43"', "TV & Video", 399.0),
    ('4K TV 55"', "TV & Video", 749.0),
    ('OLED TV 65"', "TV & Video", 1899.0),
    ("TV Wall Mount", "TV & Video", 49.0),
    ("Laptop Pro 14", "Computers", 1499.0),
    ("Laptop Air 13", "Computers", 999.0),
    ("Gaming Monitor", "Computers", 429.0),
    ("Smartphone X", "Phones", 899.0),
    ("Smartphone Lite", "Phones", 349.0),
    ("Wireless Earbuds", "Audio", 129.0),
    ("Noise-Cancelling Headphones", "Audio", 299.0),
    ("Bluetooth Speaker", "Audio", 79.0),
    ("Smartwatch", "Wearables", 249.0),
    ("Fitness Band", "Wearables", 59.0),
    ("Coffee Maker", "Home", 89.0),
    ("Robot Vacuum", "Home", 399.0),
    ("Desk Lamp", "Home", 35.0),
    ("Running Shoes", "Fashion", 110.0),
    ("Rain Jacket", "Fashion", 140.0),
    ("Backpack", "Fashion", 65.0),
    ("Novel: The Long Road", "Books", 18.0),
    ("Cookbook", "Books", 25.0),
    ("USB-C Cable", "Accessories", 15.0),
    ("Phone Case", "Accessories", 22.0),
]
# popularity of each product for ordinary shoppers (cheap things sell more)
PRODUCT_P = np.array(
    [
        4,
        3,
        1,
        3,
        1.2,
        2,
        2,
        2,
        3,
        6,
        3,
        5,
        3,
        4,
        4,
        2,
        5,
        5,
        3,
        4,
        6,
        5,
        8,
        7,
    ],
    dtype=float,
)
PRODUCT_P /= PRODUCT_P.sum()
# big spenders buy from the expensive end
WHALE_P = np.array([p >= 700 for _, _, p in PRODUCTS], dtype=float)
WHALE_P /= WHALE_P.sum()

PAGES = ["home", "pricing", "docs", "blog", "product"]
PAGE_P = np.array([0.30, 0.08, 0.18, 0.16, 0.28])
URL_BASE = "https://shop.example.com/"
PAYMENT_METHODS = ["card", "paypal", "apple_pay", "google_pay", "bank_transfer"]
PAYMENT_P = np.array([0.55, 0.2, 0.12, 0.08, 0.05])
CAMPAIGNS = [
    "weekly_digest",
    "new_arrivals",
    "tv_week",
    "summer_sale",
    "loyalty_rewards",
    "product_update",
    "back_in_stock",
]
FORMS = ["demo_request", "contact", "newsletter_signup", "webinar_registration"]
FORM_P = np.array([0.35, 0.25, 0.25, 0.15])
CHANNELS = ["chat", "email", "whatsapp", "phone"]
CHANNEL_P = np.array([0.5, 0.25, 0.15, 0.10])

EVENT_NAMES = [
    "signed_up",
    "app_launched",
    "page_viewed",
    "product_viewed",
    "added_to_cart",
    "charged",
    "email_opened",
    "email_clicked",
    "form_submitted",
    "appointment_booked",
    "conversation_started",
]
EV = {name: i for i, name in enumerate(EVENT_NAMES)}
